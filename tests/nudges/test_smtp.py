"""A real mail path: a local SMTP server (aiosmtpd) on 127.0.0.1 receives the digest that
Django's SMTP backend sends, and the message that arrives is read back."""

import email
import re
import socket
from email import policy

import pytest
from django.core import mail
from django_scopes import scope

from nudges import services
from nudges.models import Digest, OutboundEmail
from okrs.models import KeyResult

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            self.messages.append((envelope.rcpt_tos, envelope.content))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def test_the_digest_goes_through_a_real_smtp_server(revenue, smtp_server, settings):
    port, handler = smtp_server
    settings.MAILERS = {"default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5}}}
    settings.SITE_URL = "https://okrs.example.com"
    mail.outbox = []
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.deals.pk).update(last_check_in_at=None)
        [row] = Digest.objects.bulk_create([Digest(organization=r.org, user=r.mia,
                                                   week="2027-W09")])
    assert services.send_one(row.pk) == "sent"
    [(to, raw)] = handler.messages
    assert to == ["mia@a.test"]
    # The header is a plain URL on the wire, not folded into encoded words.
    assert re.search(rb"\r?\nList-Unsubscribe: <https://okrs\.example\.com/unsubscribe/[^>\s]+/>",
                     raw)
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Org A: 1 check-in due"
    assert message["List-Unsubscribe"].startswith("<https://okrs.example.com/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    check_in = f"https://okrs.example.com/o/org-a/key-results/{r.deals.pk}/check-in/"
    assert check_in in text and check_in in html
    assert "Close 3 enterprise deals" in text
    assert "<strong>Close 3 enterprise deals</strong>" in html
    with scope(organization=r.org):
        assert Digest.objects.get(pk=row.pk).status == "sent"
        queued = OutboundEmail.objects.get(dedupe_key=f"digest:{row.pk}")
    # The Message-ID on the wire is the one the outbox row was given when it was written.
    assert message["Message-ID"] == queued.message_id
    assert re.fullmatch(r"<[^@\s]+@okrs\.example\.com>", queued.message_id)
