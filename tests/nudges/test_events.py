"""Events tell the right people: in the app at once, by one bundled email after the window
(never in quiet hours), with a weekly cap on reminder emails."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.core import mail
from django_scopes import scope, scopes_disabled

from alignment import cascade
from alignment import services as workflow_services
from dependencies import services as dependency_services
from dependencies.models import Notification
from nudges import events, outbox
from nudges.models import BundleItem, EmailBundle, OutboundEmail, Preference
from okrs.models import Objective
from orgs.models import Role
from tests.factories import (
    MembershipFactory,
    ObjectiveFactory,
    UserFactory,
    WorkflowFactory,
)

pytestmark = pytest.mark.django_db


def told(user, kind):
    with scopes_disabled():
        return list(Notification.objects.filter(user=user, kind=kind)
                    .values_list("title", flat=True))


def bundled(user):
    with scopes_disabled():
        return list(BundleItem.objects.filter(bundle__user=user).values_list("kind", flat=True))


def flush_all(when):
    """The sweep after ``when``: due bundles become emails, and the outbox sends them."""
    with scopes_disabled():
        events.flush_due(when)
        for pk in OutboundEmail.objects.filter(kind="events").values_list("pk", flat=True):
            outbox.deliver(pk, now=when + timedelta(days=2))


def request(r, need="SSO by March"):
    with scope(organization=r.org):
        return dependency_services.request_dependency(
            membership=r.mia_m, downstream=r.deals, upstream=r.sso, need=need,
            needed_by=r.cycle.end_date, fallback="We sell to mid-market first")


# Recipients of each event --------------------------------------------------------------------


def test_a_request_tells_the_providing_teams_lead_and_not_who_asked(revenue):
    r = revenue
    dep = request(r)
    assert told(r.ethan, "request") == ["Sales asks Engineering: SSO by March"]
    assert bundled(r.ethan) == ["request_raised"]
    assert told(r.mia, "request") == [] and bundled(r.mia) == []
    with scopes_disabled():
        assert Notification.objects.get(user=r.ethan, kind="request").url == (
            f"/o/{r.org.slug}/dependencies/{dep.pk}/")


def test_a_request_with_no_lead_to_answer_goes_to_the_alignment_leads(revenue):
    r = revenue
    with scopes_disabled():
        r.eng.lead = None
        r.eng.save()
    request(r)
    assert told(r.liam, "request") and told(r.world.admin.user, "request")
    assert told(r.ethan, "request") == []


@pytest.mark.parametrize("status, kind, note", [
    ("committed", "answered", ""),
    ("declined", "declined", "No capacity before April."),
])
def test_an_answer_tells_who_asked_and_the_requesting_teams_lead(revenue, status, kind, note):
    r = revenue
    dep = request(r)
    asker = UserFactory(full_name="Sam Sales")
    MembershipFactory(organization=r.org, user=asker, role=Role.TEAM_LEAD)
    with scopes_disabled():
        type(dep).objects.filter(pk=dep.pk).update(created_by=asker)
        dep.refresh_from_db()
    with scope(organization=r.org):
        dependency_services.answer_dependency(membership=r.ethan_m, dependency=dep,
                                              status=status, note=note)
    assert len(told(r.mia, kind)) == 1 and len(told(asker, kind)) == 1
    assert told(r.ethan, kind) == []
    if note:
        with scopes_disabled():
            assert Notification.objects.get(user=r.mia, kind=kind).details["text"] == note
            assert BundleItem.objects.get(bundle__user=r.mia, kind="request_declined").text \
                == note


def test_a_proposal_tells_the_reviewers(revenue):
    r = revenue
    with scopes_disabled():
        draft = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng,
                                 parent=r.arr, state=Objective.State.DRAFT, title="Cut churn")
    with scope(organization=r.org):
        cascade.submit_for_review(membership=r.ethan_m, objective=draft)
    assert told(r.liam, "proposal") == ["Proposed for review: Cut churn"]
    assert told(r.world.admin.user, "proposal") == ["Proposed for review: Cut churn"]
    assert told(r.ethan, "proposal") == [] and told(r.mia, "proposal") == []


def test_changes_requested_tell_the_teams_lead_by_a_bundled_email(revenue):
    r = revenue
    with scopes_disabled():
        draft = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng,
                                 parent=r.arr, state=Objective.State.PROPOSED, title="Cut churn")
    with scope(organization=r.org):
        cascade.request_changes(membership=r.liam_m, objective=draft, text="Name a number.")
    assert told(r.ethan, "changes") == ["Changes requested: Cut churn"]
    assert bundled(r.ethan) == ["changes_requested"]


def test_a_sign_off_request_tells_leadership_in_the_app(revenue):
    r = revenue
    with scopes_disabled():
        wf = WorkflowFactory(objective=r.arr, lead=r.liam, purpose="Reach $12M ARR together.")
    with scope(organization=r.org):
        workflow_services.request_sign_off(membership=r.liam_m, workflow=wf)
    assert told(r.world.admin.user, "signoff") == ["Sign-off asked: Reach $12M ARR"]
    # Its email is the request's own (sent at once), not a second one in the bundle.
    assert bundled(r.world.admin.user) == []


def test_an_escalated_blocker_tells_who_runs_the_workflow(revenue):
    r = revenue
    with scopes_disabled():
        wf = WorkflowFactory(objective=r.arr, lead=r.liam)
    with scope(organization=r.org):
        update = workflow_services.post_update(membership=r.liam_m, workflow=wf, team=None,
                                               text="Legal blocks the SSO vendor.",
                                               is_blocker=True)
        update.author = r.mia
        workflow_services.escalate_blocker(membership=r.world.admin, update=update)
    assert told(r.liam, "blocker") == ["Blocker escalated on “Reach $12M ARR”"]
    with scopes_disabled():
        assert "Legal blocks" in BundleItem.objects.get(bundle__user=r.liam).text


def test_an_assigned_recovery_action_tells_its_owner(revenue):
    r = revenue
    with scope(organization=r.org):
        dependency_services.add_recovery_action(
            membership=r.liam_m, objective=r.arr, title="Hire an SSO contractor",
            owner=r.ethan, due_date=r.cycle.end_date)
    assert told(r.ethan, "action") == ["A recovery action for you: Hire an SSO contractor"]


def test_a_request_escalation_tells_the_person_it_climbed_to(revenue):
    r = revenue
    dep = request(r)
    with scope(organization=r.org):
        events.notify(r.org, "request_escalated", [r.liam], dep)
    assert told(r.liam, "escalated") == [
        "Escalated: Sales still waits on Engineering: SSO by March"]


def test_nobody_outside_the_organization_is_told(revenue, charlie):
    r = revenue
    with scope(organization=r.org):
        assert events.notify(r.org, "reminder", [charlie, r.ethan], r.sso) == [r.ethan.pk]
    assert told(charlie, "reminder") == []


# Bundling --------------------------------------------------------------------------------------


def test_a_burst_is_one_email_after_the_window(revenue, settings):
    settings.NOTIFY_BUNDLE_MINUTES = 10
    r = revenue
    start = datetime(2027, 2, 10, 14, 0, tzinfo=UTC)
    with scope(organization=r.org):
        for minute, what in ((0, r.sso), (3, r.deals), (9, r.sso)):
            events.notify(r.org, "request_escalated" if what is r.deals else "reminder",
                          [r.ethan], r.dependency if what is r.deals else what,
                          now=start + timedelta(minutes=minute))
    with scopes_disabled():
        assert EmailBundle.objects.filter(user=r.ethan).count() == 1
        assert events.flush_due(start + timedelta(minutes=9)) == 0  # the window is open
    flush_all(start + timedelta(minutes=10))
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ethan@a.test"]
    assert message.subject.startswith("Org A: 3 updates")
    assert message.body.count("\n- ") == 3 and "Check in on Ship SSO" in message.body
    assert "List-Unsubscribe" in message.extra_headers
    flush_all(start + timedelta(minutes=30))  # a rerun of the sweep sends nothing more
    assert len(mail.outbox) == 1

    # The next event opens a new bundle.
    with scope(organization=r.org):
        events.notify(r.org, "reminder", [r.ethan], r.sso, now=start + timedelta(minutes=40))
    flush_all(start + timedelta(minutes=51))
    assert len(mail.outbox) == 2 and mail.outbox[1].subject == "Org A: Check in on Ship SSO"


def test_preferences_pick_the_channels_per_group(revenue):
    r = revenue
    with scopes_disabled():
        Preference.objects.create(organization=r.org, user=r.ethan, requests_email=False,
                                  reminders_app=False)
    request(r)
    with scope(organization=r.org):
        events.notify(r.org, "reminder", [r.ethan], r.sso)
    assert told(r.ethan, "request") and told(r.ethan, "reminder") == []
    assert bundled(r.ethan) == ["reminder"]


def test_a_group_turned_off_during_the_window_is_not_emailed(revenue):
    r = revenue
    now = datetime(2027, 2, 10, 14, 0, tzinfo=UTC)
    with scope(organization=r.org):
        events.notify(r.org, "reminder", [r.ethan], r.sso, now=now)
    with scopes_disabled():
        Preference.objects.create(organization=r.org, user=r.ethan, reminders_email=False)
    flush_all(now + timedelta(minutes=11))
    assert mail.outbox == []


def test_reminder_emails_are_capped_per_week_and_requests_never(revenue, settings):
    settings.NOTIFY_REMINDER_WEEKLY_CAP = 2
    r = revenue
    monday = datetime(2027, 2, 8, 9, 0, tzinfo=UTC)  # the org's time zone is UTC
    with scope(organization=r.org):
        for day in range(4):  # one reminder a day, each its own email
            events.notify(r.org, "reminder", [r.ethan], r.sso, now=monday + timedelta(days=day))
            flush_all(monday + timedelta(days=day, hours=1))
        for day in range(4):
            events.notify(r.org, "request_escalated", [r.ethan], r.dependency,
                          now=monday + timedelta(days=day, hours=2))
            flush_all(monday + timedelta(days=day, hours=3))
        assert len(told(r.ethan, "reminder")) == 4  # in the app, never capped
        # Next week the count starts again.
        events.notify(r.org, "reminder", [r.ethan], r.sso, now=monday + timedelta(days=7))
        flush_all(monday + timedelta(days=7, hours=1))
    subjects = [m.subject for m in mail.outbox]
    assert subjects.count("Org A: Check in on Ship SSO") == 3
    assert sum("Escalated" in s for s in subjects) == 4


def test_reminders_in_an_open_bundle_count_as_one_email(revenue, settings):
    settings.NOTIFY_REMINDER_WEEKLY_CAP = 1
    r = revenue
    now = datetime(2027, 2, 8, 9, 0, tzinfo=UTC)
    with scope(organization=r.org):
        events.notify(r.org, "reminder", [r.ethan], r.sso, now=now)
        events.notify(r.org, "reminder", [r.ethan], r.deals, now=now + timedelta(minutes=2))
    flush_all(now + timedelta(minutes=15))
    assert len(mail.outbox) == 1 and "2 updates" in mail.outbox[0].subject


# Quiet hours and time zones --------------------------------------------------------------------


def quiet(r, tz="America/New_York"):
    with scopes_disabled():
        r.ethan.timezone = tz
        r.ethan.save()
        Preference.objects.create(organization=r.org, user=r.ethan, quiet_from=time(20),
                                  quiet_until=time(8))


def test_an_email_in_quiet_hours_waits_until_they_end_in_the_persons_time_zone(revenue):
    r = revenue
    quiet(r)
    late = datetime(2027, 2, 11, 3, 55, tzinfo=UTC)  # 22:55 in New York
    with scope(organization=r.org):
        events.notify(r.org, "reminder", [r.ethan], r.sso, now=late)
    assert told(r.ethan, "reminder")  # in the app at once
    with scopes_disabled():
        bundle = EmailBundle.objects.get(user=r.ethan)
    assert bundle.due_at == datetime(2027, 2, 11, 13, 0, tzinfo=UTC)  # 08:00 in New York
    flush_all(datetime(2027, 2, 11, 12, 59, tzinfo=UTC))
    assert mail.outbox == []
    flush_all(datetime(2027, 2, 11, 13, 0, tzinfo=UTC))
    assert len(mail.outbox) == 1


def test_outside_quiet_hours_only_the_window_waits(revenue):
    r = revenue
    quiet(r)
    noon = datetime(2027, 2, 11, 17, 0, tzinfo=UTC)  # 12:00 in New York
    with scope(organization=r.org):
        events.notify(r.org, "reminder", [r.ethan], r.sso, now=noon)
    with scopes_disabled():
        assert EmailBundle.objects.get(user=r.ethan).due_at == noon + timedelta(minutes=10)


def test_without_a_time_zone_of_their_own_quiet_hours_follow_the_organizations(revenue):
    r = revenue
    quiet(r, tz="")
    with scopes_disabled():
        r.org.timezone = "Europe/Berlin"
        r.org.save()
    late = datetime(2027, 2, 11, 21, 0, tzinfo=UTC)  # 22:00 in Berlin
    with scope(organization=r.org):
        events.notify(r.org, "reminder", [r.ethan], r.sso, now=late)
    with scopes_disabled():
        assert EmailBundle.objects.get(user=r.ethan).due_at == datetime(
            2027, 2, 12, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("start, end, at, expected", [
    (time(20), time(8), time(23), True),
    (time(20), time(8), time(7, 59), True),
    (time(20), time(8), time(8), False),
    (time(20), time(8), time(12), False),
    (time(12), time(14), time(13), True),
    (time(12), time(14), time(14), False),
    (None, None, time(3), False),
])
def test_quiet_hours_may_span_midnight(start, end, at, expected):
    assert events.is_quiet(at, start, end) is expected


def test_a_risk_alert_email_waits_out_quiet_hours_too(revenue):
    r = revenue
    quiet(r)
    late = datetime(2027, 2, 11, 3, 55, tzinfo=UTC)
    assert events.after_quiet(r.org, r.ethan, late) == datetime(2027, 2, 11, 13, 0, tzinfo=UTC)
    noon = datetime(2027, 2, 11, 17, 0, tzinfo=UTC)
    assert events.after_quiet(r.org, r.ethan, noon) is None


def test_an_item_escalated_up_the_ladder_tells_that_person(revenue):
    r = revenue
    with scopes_disabled():
        wf = WorkflowFactory(objective=r.arr, lead=r.liam)
    with scope(organization=r.org):
        update = workflow_services.post_update(membership=r.liam_m, workflow=wf, team=None,
                                               text="Legal blocks the vendor.", is_blocker=True)
        assert events.notify_escalated(update, r.ethan) == [r.ethan.pk]
        assert events.notify_escalated(r.dependency, r.mia) == [r.mia.pk]
        assert events.notify_escalated(r.world.contribution, r.ethan) == [r.ethan.pk]
    assert told(r.ethan, "blocker") == ["Blocker escalated on “Reach $12M ARR”"]
    assert told(r.mia, "escalated")[0].startswith("Escalated: Sales still waits on Engineering")
    assert told(r.ethan, "escalated")[0].startswith("Escalated: Org A Engineering asks to count")
