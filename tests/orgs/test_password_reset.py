"""Password-reset emails are rate-limited per email address and per client address. Over the
limit the page answers exactly as before (no account enumeration); only the email is not sent.
The counts live in the cache: Redis when REDIS_URL is set, shared by every gunicorn worker."""

import logging
import os
import socket
import threading
import time
import uuid
from unittest import mock

import pytest
from django.core import mail
from django.test import Client

from config.settings import redis_cache

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

RESET = "/accounts/password-reset/"


@pytest.fixture
def ask(django_capture_on_commit_callbacks):
    """Request a reset link as a visitor from an address; return the response. Emails may go
    out after the transaction commits, so the commit callbacks run here."""

    def ask(email, ip="10.0.0.1"):
        with django_capture_on_commit_callbacks(execute=True):
            return Client().post(RESET, {"email": email}, REMOTE_ADDR=ip)

    return ask


def sent_to(email):
    return sum(1 for m in mail.outbox if m.to == [email])


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@a.test", full_name="Alice Admin")


def test_at_most_three_emails_an_hour_to_one_address(alice, ask):
    answers = [ask(email, ip=f"10.0.0.{n}") for n, email in enumerate(
        ["alice@a.test", "ALICE@a.test", " alice@A.TEST ", "alice@a.test", "Alice@a.test"])]
    assert sent_to("alice@a.test") == 3
    assert {(r.status_code, r["Location"]) for r in answers} == {
        (302, "/accounts/password-reset/sent/")}


def test_the_page_answers_the_same_over_the_limit_and_for_unknown_addresses(alice, ask):
    for _ in range(3):
        ask("alice@a.test")
    over = ask("alice@a.test")
    unknown = ask("nobody@a.test")
    for response in (over, unknown):
        assert response.status_code == 302
        assert response["Location"] == "/accounts/password-reset/sent/"
    page = Client().get(over["Location"]).content.decode()
    assert "If an account uses that address, a link" in page


def test_one_client_address_is_limited_across_email_addresses(db, ask, settings):
    settings.PASSWORD_RESET_CLIENT_LIMIT = 2
    people = [UserFactory(email=f"p{n}@a.test").email for n in range(3)]
    for email in people:
        ask(email, ip="203.0.113.5")
    assert [sent_to(e) for e in people] == [1, 1, 0]
    ask(people[2], ip="198.51.100.1")  # elsewhere: still allowed
    assert sent_to(people[2]) == 1


def test_sending_resumes_after_the_hour(alice, ask):
    for _ in range(4):
        ask("alice@a.test")
    assert sent_to("alice@a.test") == 3
    later = time.time() + 3601
    with mock.patch("time.time", return_value=later):
        ask("alice@a.test")
    assert sent_to("alice@a.test") == 4


def _hung_server():
    """A TCP server that accepts connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, held


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("state", ["down", "hung"])
def test_an_unreachable_cache_skips_the_limit_quickly(alice, ask, settings, caplog, state):
    if state == "hung":
        server, held = _hung_server()
        port = server.getsockname()[1]
    else:
        port = _closed_port()
    settings.CACHES = {"default": redis_cache(f"redis://127.0.0.1:{port}/0")}
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="orgs.ratelimit"):
        response = ask("alice@a.test")
    elapsed = time.monotonic() - started
    if state == "hung":
        server.close()
        for conn in held:
            conn.close()
    assert response.status_code == 302 and sent_to("alice@a.test") == 1
    assert elapsed < 3, elapsed
    assert "rate limit not applied" in caplog.text


@pytest.mark.skipif(not os.environ.get("REDIS_URL"),
                    reason="needs REDIS_URL: the shared count lives in Redis (CI sets it)")
def test_the_count_lives_in_redis_where_every_worker_sees_it(alice, ask, settings):
    import redis

    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {**redis_cache(os.environ["REDIS_URL"]), "KEY_PREFIX": prefix}}
    other_worker = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        for _ in range(4):
            ask("alice@a.test")
        assert sent_to("alice@a.test") == 3
        keys = other_worker.keys(f"{prefix}:*pwreset:email:*")
        assert len(keys) == 1 and int(other_worker.get(keys[0])) == 4
        assert 3500 < other_worker.ttl(keys[0]) <= 3600
    finally:
        for key in other_worker.scan_iter(f"{prefix}:*"):
            other_worker.delete(key)
        other_worker.close()
