"""The weekly digest: what it says, when it goes, exactly once, and how to stop it."""

import io
import re
from datetime import UTC, datetime, time, timedelta
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from alignment.models import Workflow
from dependencies.models import Dependency
from nudges import content, outbox, services, tasks
from nudges.models import Digest, Preference
from okrs.models import KeyResult
from orgs.models import Membership
from tests.conftest import build_world, client_for
from tests.factories import (
    DependencyFactory,
    MembershipFactory,
    MilestoneFactory,
    OrganizationFactory,
    StakeholderFactory,
    UserFactory,
    WorkflowFactory,
)

pytestmark = pytest.mark.django_db


def member(r, user):
    with scope(organization=r.org):
        return Membership.objects.select_related("organization", "user").get(
            organization=r.org, user=user)


def test_a_digest_with_every_section(revenue):
    r = revenue
    now = timezone.now()
    with scope(organization=r.org):
        # Mia's deals KR: no check-in for 10 days, and at risk because of SSO.
        KeyResult.objects.filter(pk=r.deals.pk).update(
            last_check_in_at=now - timedelta(days=10), effective_health="at_risk",
            risk_causes=[[{"kind": "k", "id": r.sso.pk, "objective": r.platform.pk,
                           "title": "Ship SSO", "team": "Engineering", "health": "off_track",
                           "reason": "dependency"}]])
        # Engineering asks Sales for something: a decision for Mia.
        Dependency.objects.all().delete()
    DependencyFactory(downstream=r.platform, upstream=r.win, status="requested",
                      need="Three pilot customers")
    # The next working day (syncs are on Monday to Friday).
    workday = next(d % 7 for d in range(now.weekday() + 1, now.weekday() + 8) if d % 7 < 5)
    wf = WorkflowFactory(objective=r.arr, lead=r.liam, sync_frequency="weekly",
                         sync_weekday=workday, sync_time=time(9, 30),
                         sync_format="25 minutes")
    StakeholderFactory(workflow=wf, team=r.sales, owner=r.mia, role="lead")
    MilestoneFactory(workflow=wf, title="Pilot contracts signed", owner_team=r.sales,
                     due_date=timezone.localdate() + timedelta(days=5))
    with scope(organization=r.org):
        d = content.build(member(r, r.mia), now=now)
        message = services.render_digest(member(r, r.mia), d)
    assert [k["title"] for k in d.check_ins] == ["Close 3 enterprise deals"]
    assert d.check_ins[0]["url"].endswith(f"/o/org-a/key-results/{r.deals.pk}/check-in/")
    assert d.upstream[0]["root"] == "Ship SSO" and d.upstream[0]["root_team"] == "Engineering"
    assert [x["title"] for x in d.decisions] == ["Engineering needs: Three pilot customers"]
    assert [m["title"] for m in d.milestones] == ["Pilot contracts signed"]
    assert [s["title"] for s in d.syncs] == ["Reach $12M ARR"]
    assert d.subject() == ("1 check-in due, 1 risk upstream, 1 decision waiting, "
                           "1 milestone due")
    text, html = message.body, message.alternatives[0].content
    assert "CHECK-INS DUE (1)" in text and (
        "Upstream dependency: “Ship SSO” (Engineering) is off track" in text)
    assert "http://" in text and "/check-in/" in html
    assert message.extra_headers["List-Unsubscribe"].startswith("<http")


def test_nothing_to_say_means_no_email(revenue):
    r = revenue
    quiet = MembershipFactory(organization=r.org, role="member")
    with scope(organization=r.org):
        assert content.build(member(r, quiet.user)).empty
    mail.outbox.clear()
    with scope(organization=r.org):
        [row] = Digest.objects.bulk_create([Digest(organization=r.org, user=quiet.user,
                                                   week="2027-W01")])
    assert services.send_one(row.pk) == "empty"
    assert mail.outbox == []


def org_in(tz, slug):
    org = OrganizationFactory(slug=slug, timezone=tz, digest_weekday=0, digest_hour=9)
    w = build_world(org, UserFactory())
    with scope(organization=org):
        KeyResult.objects.filter(pk=w.key_result.pk).update(owner=w.admin.user,
                                                            last_check_in_at=None)
    return org


def test_each_organization_gets_its_digest_at_its_local_hour(db):
    tokyo = org_in("Asia/Tokyo", "tokyo")
    la = org_in("America/Los_Angeles", "la")
    # Monday 09:05 in Tokyo is Sunday 16:05 in Los Angeles.
    monday_tokyo = datetime(2027, 3, 1, 0, 5, tzinfo=UTC)
    assert services.is_due(tokyo, monday_tokyo) and not services.is_due(la, monday_tokyo)
    assert services.is_due(tokyo, monday_tokyo - timedelta(minutes=10)) is False  # 08:55
    monday_la = datetime(2027, 3, 1, 17, 5, tzinfo=UTC)  # 09:05 in LA
    assert services.is_due(la, monday_la)
    assert services.week_of(monday_tokyo, services.ZoneInfo("Asia/Tokyo")) == "2027-W09"
    assert services.week_of(monday_tokyo, services.ZoneInfo("America/Los_Angeles")) == \
        "2027-W08"  # still last week there
    assert [o.slug for o in services.due_organizations(monday_tokyo)] == ["tokyo"]


def test_running_the_weekly_task_twice_sends_one_digest_each(revenue, monkeypatch):
    r = revenue
    r.org.digest_weekday, r.org.digest_hour = 0, 0
    r.org.save()
    with scope(organization=r.org):
        KeyResult.objects.update(last_check_in_at=None)
    mail.outbox.clear()
    monkeypatch.setattr(services, "due_organizations", lambda now: [r.org])
    tasks.send_due_digests()
    first = sorted(m.to[0] for m in mail.outbox)
    tasks.send_due_digests()
    second = sorted(m.to[0] for m in mail.outbox)
    assert first == second and "mia@a.test" in first and "ethan@a.test" in first
    with scope(organization=r.org):
        assert Digest.objects.filter(status="sent").count() == len(first)


def retry_for(minutes):
    """Run the outbox sweep once a minute for ``minutes`` minutes of (pretend) time, sending
    what it finds due, as beat and the worker would."""
    start = timezone.now()
    for minute in range(1, minutes + 1):
        later = start + timedelta(minutes=minute)
        for email_id in outbox.sweep(now=later):
            outbox.deliver(email_id, now=later)


def test_an_smtp_failure_for_one_recipient_does_not_stop_the_others(revenue, monkeypatch,
                                                                    settings):
    from django.core.mail.backends.locmem import EmailBackend

    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.update(last_check_in_at=None)
    failures = {"mia@a.test": 2}  # fails twice, then the mail server takes it

    class Flaky(EmailBackend):
        def send_messages(self, messages):
            for m in messages:
                if failures.get(m.to[0], 0) > 0:
                    failures[m.to[0]] -= 1
                    raise SMTPException("451 try again later")
            return super().send_messages(messages)

    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.FlakyBackend"}}
    globals()["FlakyBackend"] = Flaky
    mail.outbox = []
    monkeypatch.setattr(services, "due_organizations", lambda now: [r.org])
    tasks.send_due_digests()
    # Alice owns an open recovery action: her inbox, so her digest, lists it.
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@a.test", "ethan@a.test"]
    with scope(organization=r.org):
        mia = Digest.objects.get(user=r.mia)
    assert mia.status == "pending" and "451 try again later" in mia.error
    retry_for(5)  # retried after 1 minute (fails again), then after 2 more (goes)
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@a.test", "ethan@a.test",
                                                    "mia@a.test"]
    with scope(organization=r.org):
        mia = Digest.objects.get(user=r.mia)
    assert mia.status == "sent" and mia.attempts == 3 and mia.error == ""


def test_a_mail_server_that_never_answers_marks_the_digest_failed(revenue, monkeypatch,
                                                                  settings):
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.update(last_check_in_at=None)
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.DeadBackend"}}
    monkeypatch.setattr(services, "due_organizations", lambda now: [r.org])
    tasks.send_due_digests()
    retry_for(60)  # 1 + 2 + 4 + 8 + 16 minutes of retries, then it gives up
    with scope(organization=r.org):
        rows = list(Digest.objects.values_list("status", "error", "attempts"))
    failed = [(e, n) for s, e, n in rows if s == "failed"]
    assert failed and all("refused" in e and n == outbox.MAX_ATTEMPTS for e, n in failed)
    assert {s for s, _, _ in rows} <= {"failed", "empty"}  # nothing sent, nothing left pending
    # The send log shows it to admins, and only to them.
    page = client_for(r.world.admin.user).get(reverse("send_log", args=[r.org.slug]))
    assert "connection refused" in page.content.decode()
    assert client_for(r.mia).get(reverse("send_log", args=[r.org.slug])).status_code == 403


class DeadBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("connection refused")


def test_unsubscribe_by_token_and_a_tampered_token_is_refused(revenue, client):
    r = revenue
    token = services.unsubscribe_token(r.org, r.mia)
    url = reverse("unsubscribe", args=[token])
    assert "Stop the weekly digest?" in client.get(url).content.decode()
    # One-click: a mail client POSTs without a session or CSRF token.
    response = client.post(url)
    assert response.status_code == 200 and "You are unsubscribed" in response.content.decode()
    assert not services.wants(r.org, r.mia.pk, "digest")
    assert services.wants(r.org, r.mia.pk, "alerts")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = client.post(reverse("unsubscribe", args=[tampered]))
    assert response.status_code == 400
    from django.core import signing

    forged = signing.dumps({"o": r.org.pk, "u": r.ethan.pk, "k": "digest"}, salt="other")
    assert client.post(reverse("unsubscribe", args=[forged])).status_code == 400
    assert services.wants(r.org, r.ethan.pk, "digest")


def test_preferences_page_and_alerts_off(revenue):
    r = revenue
    mia = client_for(r.mia)
    url = reverse("preferences", args=[r.org.slug])
    assert "every Monday" in mia.get(url).content.decode()
    mia.post(url, {"weekly_digest": "on"})  # immediate alerts unticked
    with scope(organization=r.org):
        pref = Preference.objects.get(user=r.mia)
    assert pref.weekly_digest and not pref.immediate_alerts


def test_send_digests_dry_run_prints_and_sends_nothing(revenue):
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.update(last_check_in_at=None)
    mail.outbox.clear()
    out = io.StringIO()
    call_command("send_digests", "--org", r.org.slug, "--dry-run", stdout=out)
    text = out.getvalue()
    assert re.search(r"mia@a\.test: Org A: 1 check-in due", text)
    assert "bob@a.test: nothing this week, no email" in text
    assert mail.outbox == []
    with scope(organization=r.org):
        assert not Digest.objects.exists()
    out = io.StringIO()
    call_command("send_digests", "--org", r.org.slug, stdout=out)
    assert "sent" in out.getvalue() and mail.outbox


def test_the_next_sync_is_in_the_organizations_time_zone():
    from zoneinfo import ZoneInfo

    wf = Workflow(sync_frequency="weekly", sync_weekday=1, sync_time=time(9, 30))
    tz = ZoneInfo("Asia/Tokyo")
    monday = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)  # Monday 12:00 in Tokyo
    when = content.next_sync(wf, monday, tz)
    assert when.isoformat() == "2027-03-02T09:30:00+09:00"


def test_claiming_the_week_walks_members_in_batches_and_skips_the_opted_out(revenue,
                                                                            monkeypatch):
    r = revenue
    monkeypatch.setattr(services, "BATCH", 2)
    with scope(organization=r.org):
        Preference.objects.create(organization=r.org, user=r.ethan, weekly_digest=False)
    now = timezone.now()
    first = services.claim_week(r.org, now=now)
    again = services.claim_week(r.org, now=now)
    with scope(organization=r.org):
        members = Membership.objects.filter(organization=r.org).count()
        users = set(Digest.objects.values_list("user_id", flat=True))
    assert len(first) == members - 1 and sorted(again) == sorted(first)
    assert r.ethan.pk not in users


def test_a_dependency_is_listed_once_per_person(revenue):
    """Ava's case: she leads the company (so every team below it) and, as an admin, is the
    ladder's last step: an unanswered request to a team below her is one decision, not two.
    Liam (alignment lead, leads no team) sees it once the ladder reaches him."""
    from dependencies import ladder

    r = revenue
    ava = r.world.admin
    with scope(organization=r.org):
        from orgs.models import Team

        Team.objects.filter(pk=r.world.company.pk).update(lead=ava.user)
        Dependency.objects.all().delete()
    d = DependencyFactory(downstream=r.deals, upstream=r.sso, status="requested",
                          need="Landing pages under 1 s on mobile")
    with scope(organization=r.org):
        Dependency.objects.filter(pk=d.pk).update(created_at=timezone.now() - timedelta(days=15))
        # Day 3 Ethan (Engineering's lead), day 7 skipped (he heads it too), day 14 Liam.
        ladder.climb(r.org)
        ava_digest = content.build(member(r, ava.user))
        ethan_digest = content.build(member(r, r.ethan))  # leads Engineering, not a manager
        liam_digest = content.build(member(r, r.liam))  # alignment lead, leads no team
    for digest, kind in ((ava_digest, "Answer a request"), (ethan_digest, "Answer a request"),
                         (liam_digest, "Escalation")):
        about = [x for x in digest.decisions if "Landing pages" in x["title"]]
        assert [x["kind"] for x in about] == [kind]
    with scope(organization=r.org):
        text = services.render_digest(member(r, ava.user), ava_digest).body
    assert text.count("Landing pages under 1 s on mobile") == 1
