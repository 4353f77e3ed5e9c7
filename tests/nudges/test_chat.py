"""Chat channels, against a local HTTP server that records what it gets: each tool's message
format, the generic format's signature, retries with backoff, no redirects, the console page
and its "send a test message" button."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from nudges import chat, events
from nudges.models import ChatChannel, ChatDelivery
from tests.factories import ChatChannelFactory, MembershipFactory, TeamFactory, UserFactory
from tests.querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


class Hook:
    """A webhook on 127.0.0.1: records each POST; answers the statuses queued in ``answers``
    (then 200)."""

    def __init__(self):
        self.received, self.answers = [], []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                hook.received.append({"path": self.path, "headers": headers, "body": body})
                status = hook.answers.pop(0) if hook.answers else 200
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def json(self, i=-1):
        return json.loads(self.received[i]["body"])


@pytest.fixture
def hook(settings):
    settings.CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def channel(r, hook, tool, team=None, **flags):
    with scopes_disabled():
        return ChatChannelFactory(organization=r.org, team=team, tool=tool, url=hook.url,
                                  secret="s3cret", **flags)


def send_all():
    with scopes_disabled():
        pks = list(ChatDelivery.objects.filter(status="pending").values_list("pk", flat=True))
    return [chat.deliver(pk) for pk in pks]


def raise_request(r):
    from dependencies import services

    with scope(organization=r.org):
        return services.request_dependency(
            membership=r.mia_m, downstream=r.deals, upstream=r.sso, need="SSO by <March> & co",
            needed_by=r.cycle.end_date, fallback="Mid-market first")


# Formats ---------------------------------------------------------------------------------------


def test_slack_gets_blocks_with_a_link_and_escaped_text(revenue, hook):
    r = revenue
    channel(r, hook, "slack")
    dep = raise_request(r)
    assert send_all() == ["sent"]
    got = hook.json()
    url = f"http://127.0.0.1:8000/o/{r.org.slug}/dependencies/{dep.pk}/"
    section = got["blocks"][0]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].startswith(
        f"*<{url}|Sales asks Engineering: SSO by &lt;March&gt; &amp; co>*")
    assert "By Mia Sales." in section["text"]["text"]
    assert got["text"].startswith("Sales asks Engineering: SSO by <March> & co")
    assert "x-okr-signature" not in hook.received[0]["headers"]  # Slack takes no signature


def test_teams_gets_a_message_card_with_an_open_button(revenue, hook):
    r = revenue
    channel(r, hook, "teams")
    dep = raise_request(r)
    send_all()
    card = hook.json()
    assert card["@type"] == "MessageCard"
    assert card["@context"] == "https://schema.org/extensions"
    assert card["title"] == "Sales asks Engineering: SSO by &lt;March&gt; &amp; co"
    [action] = card["potentialAction"]
    assert action["@type"] == "OpenUri"
    assert action["targets"][0]["uri"].endswith(f"/dependencies/{dep.pk}/")


def test_generic_json_is_signed_with_the_channels_secret(revenue, hook):
    r = revenue
    channel(r, hook, "generic")
    raise_request(r)
    send_all()
    got = hook.received[0]
    data = json.loads(got["body"])
    assert data["event"] == "request_raised" and data["group"] == "requests"
    assert data["organization"] == r.org.slug and data["title"].startswith("Sales asks")
    expected = hmac.new(b"s3cret", got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["x-okr-signature"] == f"sha256={expected}"
    assert hmac.compare_digest(got["headers"]["x-okr-signature"],
                               chat.sign("s3cret", got["body"]))
    assert chat.sign("other", got["body"]) != got["headers"]["x-okr-signature"]
    assert got["headers"]["content-type"] == "application/json; charset=utf-8"


# Which channels ---------------------------------------------------------------------------------


def test_events_go_to_the_organization_and_the_teams_concerned_as_each_channel_takes(
        revenue, hook):
    r = revenue
    org_channel = channel(r, hook, "generic")
    sales = channel(r, hook, "generic", team=r.sales)
    channel(r, hook, "generic", team=r.eng, requests=False)  # takes no requests
    with scopes_disabled():
        other_team = ChatChannelFactory(organization=r.org, url=hook.url,
                                        team=TeamFactory(organization=r.org, name="Legal"))
    raise_request(r)
    with scopes_disabled():
        assert sorted(ChatDelivery.objects.values_list("channel_id", flat=True)) == sorted(
            [org_channel.pk, sales.pk])
        assert not ChatDelivery.objects.filter(channel=other_team).exists()


def test_a_team_channel_is_skipped_when_everyone_told_turned_chat_off(revenue, hook):
    from nudges.models import Preference

    r = revenue
    org_channel = channel(r, hook, "generic")
    channel(r, hook, "generic", team=r.eng)
    with scopes_disabled():
        Preference.objects.create(organization=r.org, user=r.ethan, requests_chat=False)
    raise_request(r)
    with scopes_disabled():
        assert list(ChatDelivery.objects.values_list("channel_id", flat=True)) == [
            org_channel.pk]


def test_a_paused_channel_gets_nothing(revenue, hook):
    r = revenue
    channel(r, hook, "slack", is_active=False)
    raise_request(r)
    with scopes_disabled():
        assert not ChatDelivery.objects.exists()


# Retries and care ------------------------------------------------------------------------------


def test_a_failed_post_is_retried_with_backoff_through_the_sweep(revenue, hook):
    r = revenue
    channel(r, hook, "generic")
    raise_request(r)
    hook.answers = [500, 503]
    now = timezone.now()
    with scopes_disabled():
        row = ChatDelivery.objects.get()
    assert chat.deliver(row.pk, now=now) == "pending"
    with scopes_disabled():
        row.refresh_from_db()
    assert (row.attempts, row.last_error) == (1, "HTTP 500: Internal Server Error")
    assert row.next_attempt_at == now + timedelta(minutes=1)
    assert chat.sweep(now=now) == []  # not due yet
    assert chat.sweep(now=now + timedelta(minutes=1)) == [row.pk]
    assert chat.deliver(row.pk, now=now + timedelta(minutes=1)) == "pending"
    with scopes_disabled():
        row.refresh_from_db()
    assert row.next_attempt_at == now + timedelta(minutes=3)  # 1 + 2 minutes
    assert chat.deliver(row.pk, now=now + timedelta(minutes=3)) == "sent"
    assert chat.deliver(row.pk, now=now + timedelta(minutes=9)) is None  # sent once only
    assert len(hook.received) == 3
    assert len({h["body"] for h in hook.received}) == 1  # the same body each time


def test_after_six_attempts_a_post_is_given_up(revenue, hook):
    r = revenue
    channel(r, hook, "slack")
    raise_request(r)
    hook.answers = [500] * 6
    now = timezone.now()
    with scopes_disabled():
        row = ChatDelivery.objects.get()
    outcomes = [chat.deliver(row.pk, now=now + timedelta(hours=i)) for i in range(6)]
    assert outcomes == ["pending"] * 5 + ["failed"]
    assert chat.sweep(now=now + timedelta(days=1)) == []


def test_a_redirect_is_not_followed(revenue, hook):
    r = revenue
    channel(r, hook, "generic")
    raise_request(r)
    hook.answers = [302]
    assert send_all() == ["pending"]
    assert len(hook.received) == 1  # nothing went to the redirect's target
    with scopes_disabled():
        assert "302" in ChatDelivery.objects.get().last_error


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd",
                                 "javascript:alert(1)", "http://user:pw@example.com/x"])
def test_only_plain_http_urls_are_taken(url, settings):
    settings.CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    with pytest.raises(ValidationError):
        chat.check_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://10.1.2.3/hook",
                                 "http://169.254.169.254/latest/meta-data",
                                 "http://[::1]/hook", "http://localhost/hook"])
def test_private_addresses_are_refused(url, settings):
    settings.CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(ValidationError):
        chat.check_url(url)


# The weekly summary -----------------------------------------------------------------------------


def test_the_weekly_summary_goes_once_per_channel_and_week(revenue, hook):
    r = revenue
    channel(r, hook, "generic")
    channel(r, hook, "slack", team=r.eng)
    channel(r, hook, "slack", team=r.sales, weekly_summary=False)
    with scope(organization=r.org):
        chat.queue_weekly_summaries(r.org, week="2027-W07")
        chat.queue_weekly_summaries(r.org, week="2027-W07")
    assert sorted(send_all()) == ["sent", "sent"]
    texts = sorted(json.dumps(hook.json(i)) for i in range(2))
    assert any("Weekly summary of Engineering, 2027-W07" in t for t in texts)
    assert any("Weekly summary of Org A, 2027-W07" in t for t in texts)
    assert any("1 key result" in t for t in texts)


# The console page -------------------------------------------------------------------------------


def test_an_admin_adds_a_channel_and_sends_a_test_message(revenue, hook, alice_client):
    r = revenue
    response = alice_client.post(f"/o/{r.org.slug}/console/chat/", {
        "tool": "generic", "url": hook.url, "requests": "on", "weekly_summary": "on",
        "is_active": "on"})
    assert response.status_code == 302
    with scopes_disabled():
        added = ChatChannel.objects.get(organization=r.org, is_active=True)
    assert added.team is None and len(added.secret) == 64 and added.created_by == r.world.admin.user
    page = alice_client.post(f"/o/{r.org.slug}/console/chat/{added.pk}/test/", follow=True)
    assert "Test message sent" in page.content.decode()
    data = hook.json()
    assert data["title"] == "Test message from Org A" and data["event"] == "test"
    assert hook.received[0]["headers"]["x-okr-signature"] == chat.sign(added.secret,
                                                                      hook.received[0]["body"])


def test_a_test_message_that_fails_says_why(revenue, hook, alice_client):
    r = revenue
    c = channel(r, hook, "slack")
    hook.answers = [404]
    page = alice_client.post(f"/o/{r.org.slug}/console/chat/{c.pk}/test/", follow=True)
    assert "did not arrive (HTTP 404: Not Found)" in page.content.decode()


def test_a_bad_url_is_a_form_error_and_keeps_what_was_typed(revenue, alice_client, settings):
    settings.CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    r = revenue
    response = alice_client.post(f"/o/{r.org.slug}/console/chat/", {
        "tool": "slack", "url": "http://127.0.0.1:9/hook", "requests": "on"})
    html = response.content.decode()
    assert response.status_code == 200 and "inside a private network" in html
    assert 'value="http://127.0.0.1:9/hook"' in html


def test_a_second_channel_for_the_organization_is_refused(revenue, hook, alice_client):
    r = revenue
    channel(r, hook, "slack")
    response = alice_client.post(f"/o/{r.org.slug}/console/chat/", {
        "tool": "teams", "url": hook.url})
    assert "has a channel already" in response.content.decode()


def test_only_admins_and_alignment_leads_manage_channels(revenue, bob_client, hook):
    r = revenue
    c = channel(r, hook, "slack")
    assert bob_client.get(f"/o/{r.org.slug}/console/chat/").status_code == 403
    assert bob_client.post(f"/o/{r.org.slug}/console/chat/{c.pk}/test/").status_code == 403
    assert hook.received == []


def test_removing_a_channel_asks_first(revenue, hook, alice_client):
    r = revenue
    c = channel(r, hook, "slack")
    url = f"/o/{r.org.slug}/console/chat/{c.pk}/delete/"
    assert alice_client.post(url).status_code == 302  # to the page that asks
    with scopes_disabled():
        assert ChatChannel.objects.filter(pk=c.pk).exists()
    assert "Remove the chat channel of Org A?" in alice_client.get(url).content.decode()
    alice_client.post(url, {"confirm": "yes"})
    with scopes_disabled():
        assert not ChatChannel.objects.filter(pk=c.pk).exists()


def test_the_channels_page_costs_the_same_queries_with_more_channels(revenue, hook,
                                                                     alice_client):
    r = revenue
    url = f"/o/{r.org.slug}/console/chat/"
    channel(r, hook, "slack")
    small = count_queries(lambda: alice_client.get(url))
    with scopes_disabled():
        for i in range(20):
            team_user = UserFactory()
            MembershipFactory(organization=r.org, user=team_user)
            ChatChannelFactory(organization=r.org, team=TeamFactory(organization=r.org,
                                                                    name=f"Team {i}"))
    large = count_queries(lambda: alice_client.get(url))
    assert large[0].status_code == 200 and "Team 3" in large[0].content.decode()
    assert_same_queries(small, large)


def test_the_channel_page_costs_the_same_queries_with_more_posts(revenue, hook, alice_client):
    r = revenue
    c = channel(r, hook, "slack")
    url = f"/o/{r.org.slug}/console/chat/{c.pk}/"
    small = count_queries(lambda: alice_client.get(url))
    with scopes_disabled():
        for i in range(30):
            chat.queue(c, kind="event", title=f"Post {i}", body={}, enqueue=False)
    large = count_queries(lambda: alice_client.get(url))
    assert "Post 29" in large[0].content.decode() and "Post 3<" not in large[0].content.decode()
    assert_same_queries(small, large)


def test_risk_alerts_post_once_per_run(revenue, hook):
    from dependencies.models import Notification

    r = revenue
    channel(r, hook, "generic")
    with scopes_disabled():
        notes = [Notification(organization=r.org, user=r.mia, kind="worse", health="at_risk",
                              objective=r.win, key_result=r.deals, title=r.deals.title),
                 Notification(organization=r.org, user=r.liam, kind="worse", health="at_risk",
                              objective=r.win, key_result=r.deals, title=r.deals.title)]
    events.risk_run(r.org, notes)
    send_all()
    assert len(hook.received) == 1
    data = hook.json()
    assert data["group"] == "risks"
    assert data["title"] == "Close 3 enterprise deals turned at risk because of other work"


def test_the_digest_beat_queues_the_weekly_summaries_of_due_organizations(revenue, hook):
    from nudges import tasks

    r = revenue
    c = channel(r, hook, "teams")
    now = timezone.now()
    with scopes_disabled():
        type(r.org).objects.filter(pk=r.org.pk).update(digest_weekday=now.weekday(),
                                                       digest_hour=now.hour, timezone="UTC")
    tasks.send_due_digests()
    tasks.send_due_digests()  # a second beat in the same week posts nothing more
    with scopes_disabled():
        [row] = ChatDelivery.objects.filter(channel=c, kind="summary")
    assert row.title.startswith("Weekly summary of Org A")


def test_the_outbox_sweep_sends_due_chat_posts_again(revenue, hook):
    from nudges import tasks

    r = revenue
    channel(r, hook, "generic")
    raise_request(r)
    hook.answers = [500]
    assert send_all() == ["pending"]
    with scopes_disabled():
        ChatDelivery.objects.update(next_attempt_at=timezone.now())  # its retry time came
    tasks.sweep_outbox()
    with scopes_disabled():
        assert ChatDelivery.objects.get().status == "sent"
    assert len(hook.received) == 2


def test_a_post_is_checked_again_when_sent_and_goes_to_the_checked_address(
        revenue, hook, settings, monkeypatch):
    """A channel saved while its host was public, whose name now resolves inside the network
    (DNS rebinding), is not posted to: the guarded client checks at send time and connects to
    the address it checked."""
    r = revenue
    c = channel(r, hook, "generic")
    with scopes_disabled():
        ChatChannel.objects.filter(pk=c.pk).update(url="http://hooks.example.test/in")
    settings.CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    monkeypatch.setattr("socket.getaddrinfo",
                        lambda *a, **k: [(2, 1, 6, "", ("10.0.0.7", 80))])
    raise_request(r)
    assert send_all() == ["pending"]
    assert hook.received == []
    with scopes_disabled():
        error = ChatDelivery.objects.get().last_error
    assert "inside a private network (10.0.0.7)" in error
