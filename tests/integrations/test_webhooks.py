"""Outbound webhooks: services emit events on commit, deliveries are signed, retried with
backoff and logged per attempt; Redeliver sends one again; the sweep finds stuck ones."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment.cascade import publish_cycle
from dependencies.models import Dependency
from dependencies.services import answer_dependency
from integrations import signing, webhooks
from integrations.models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from okrs.models import KeyResult, Objective
from okrs.scoring import close_cycle
from okrs.services import record_check_in
from orgs.models import Cycle, Membership

from .conftest import allow_private

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status


def member(w, user=None):
    with scope(organization=w.org):
        return Membership.objects.select_related("organization", "user").get(
            user=user or w.admin.user)


def subscribe(w, server, events=("check_in.created",), path="/hook"):
    allow_private(w.org)
    with scope(organization=w.org):
        row, secret = webhooks.save_subscription(membership=member(w), url=server.url(path),
                                                 events=list(events))
    return row, secret


def check_in(w, **kwargs):
    with scope(organization=w.org):
        kr = KeyResult.objects.select_related("objective__cycle", "objective__team",
                                              "owner_team", "organization").get(
            pk=w.key_result.pk)
        return record_check_in(membership=member(w), key_result=kr,
                               **{"confidence": "on_track", "value": 50, **kwargs})


def deliveries(**filters):
    with scopes_disabled():
        return list(WebhookDelivery.objects.filter(**filters).order_by("pk"))


def test_a_check_in_is_posted_signed_once_it_commits(world_a, server,
                                                      django_capture_on_commit_callbacks):
    server.routes["/hook"] = (204, {}, b"")
    row, secret = subscribe(world_a, server)
    with django_capture_on_commit_callbacks(execute=True):
        made = check_in(world_a, note="Half way")
        assert server.received == []  # nothing leaves before the commit
    [received] = server.received
    signing.verify(secret, timestamp=received["headers"]["X-OKR-Timestamp"],
                   body=received["body"], signature=received["headers"]["X-OKR-Signature"])
    payload = json.loads(received["body"])
    assert payload["type"] == "check_in.created" and payload["organization"]["slug"] == "org-a"
    assert payload["data"]["check_in"]["id"] == made.pk
    assert payload["data"]["check_in"]["note"] == "Half way"
    assert received["headers"]["X-OKR-Event-Id"] == payload["id"]
    [delivery] = deliveries(subscription=row)
    assert delivery.status == Status.SENT and delivery.last_status_code == 204
    with scopes_disabled():
        [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code == 204 and attempt.error == ""


def test_only_active_subscriptions_to_the_event_get_it(world_a, server):
    other, _ = subscribe(world_a, server, events=["cycle.closed"])
    paused, _ = subscribe(world_a, server, events=["check_in.created"])
    wanted, _ = subscribe(world_a, server, events=["check_in.created"])
    with scopes_disabled():
        WebhookSubscription.objects.filter(pk=paused.pk).update(is_active=False)
    check_in(world_a)
    assert deliveries(subscription__in=[other, paused]) == []
    assert [d.event_type for d in deliveries(subscription=wanted)] == ["check_in.created"]


def test_a_failed_delivery_is_retried_with_backoff_then_given_up(world_a, server):
    server.routes["/hook"] = (500, {}, b"busy")
    row, _ = subscribe(world_a, server)
    check_in(world_a)  # without the commit callbacks: queued, not sent
    [delivery] = deliveries(subscription=row)
    now = timezone.now()
    waits = []
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        assert webhooks.deliver(delivery.pk, now=now) in (Status.PENDING, Status.FAILED)
        assert webhooks.deliver(delivery.pk, now=now) is None  # not due yet: nothing to claim
        delivery.refresh_from_db()
        if attempt < webhooks.MAX_ATTEMPTS:
            waits.append(delivery.next_attempt_at - now)
            now = delivery.next_attempt_at
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16)]
    assert delivery.status == Status.FAILED and delivery.last_status_code == 500
    with scopes_disabled():
        log = list(WebhookAttempt.objects.filter(delivery=delivery))
    assert len(log) == webhooks.MAX_ATTEMPTS and {a.error for a in log} == {"HTTP 500"}
    assert len(server.received) == webhooks.MAX_ATTEMPTS


def test_redeliver_sends_the_same_event_again(world_a, server,
                                               django_capture_on_commit_callbacks):
    server.routes["/hook"] = (500, {}, b"")
    row, _ = subscribe(world_a, server)
    with django_capture_on_commit_callbacks(execute=True):
        check_in(world_a)
    [delivery] = deliveries(subscription=row)
    assert delivery.status == Status.PENDING and delivery.attempts == 1
    server.routes["/hook"] = (200, {}, b"ok")
    with scope(organization=world_a.org):
        with pytest.raises(PermissionDenied):
            webhooks.redeliver(membership=member(world_a, world_a.bob.user), delivery=delivery)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.redeliver(membership=member(world_a), delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT
    first, second = server.received
    assert first["headers"]["X-OKR-Event-Id"] == second["headers"]["X-OKR-Event-Id"]
    with scopes_disabled():
        codes = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("pk")
                     .values_list("status_code", flat=True))
    assert codes == [500, 200]


def test_a_private_address_is_refused_at_delivery_when_no_longer_allowed(world_a, server):
    row, _ = subscribe(world_a, server)
    allow_private(world_a.org, False)
    check_in(world_a)
    [delivery] = deliveries(subscription=row)
    assert webhooks.deliver(delivery.pk) == Status.PENDING
    delivery.refresh_from_db()
    assert "private network" in delivery.last_error and server.received == []


def test_the_sweep_sends_stuck_and_due_deliveries(world_a, server):
    server.routes["/hook"] = (200, {}, b"")
    row, _ = subscribe(world_a, server)
    check_in(world_a)
    [delivery] = deliveries(subscription=row)
    with scopes_disabled():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=Status.SENDING, claimed_at=timezone.now() - timedelta(minutes=10),
            attempts=1)
    from integrations import tasks

    tasks.sweep_integrations()
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT and len(server.received) == 1


def test_services_emit_their_events(world_a, server):
    row, _ = subscribe(world_a, server, events=Event.values)
    with scope(organization=world_a.org):
        dependency = Dependency.objects.get(pk=world_a.dependency.pk)
        Dependency.objects.filter(pk=dependency.pk).update(status="requested")
        dependency.status = "requested"
        answer_dependency(membership=member(world_a), dependency=dependency, status="committed")
        Objective.objects.filter(pk=world_a.objective.pk).update(state="approved")
        publish_cycle(membership=member(world_a), cycle=world_a.cycle)
        close_cycle(membership=member(world_a), cycle=world_a.cycle, anyway=True)
    bodies = {d.event_type: json.loads(d.body) for d in deliveries(subscription=row)}
    assert bodies["dependency.answered"]["data"]["dependency"]["status"] == "committed"
    assert bodies["objective.published"]["data"]["objective"]["id"] == world_a.objective.pk
    assert bodies["cycle.closed"]["data"]["cycle"]["id"] == world_a.cycle.pk
    with scopes_disabled():
        assert Cycle.objects.get(pk=world_a.cycle.pk).is_closed


def test_a_recompute_emits_the_health_changes(world_a, server):
    row, _ = subscribe(world_a, server, events=["health.changed"])
    check_in(world_a, confidence="off_track", value=1)
    from dependencies import network

    with scopes_disabled():
        cycle = Cycle.objects.select_related("organization").get(pk=world_a.cycle.pk)
    with scope(organization=world_a.org):
        network.run(cycle)
    health = [json.loads(d.body) for d in deliveries(subscription=row)]
    changes = [c for body in health for c in body["data"]["changes"]]
    assert {"type": "key_result", "id": world_a.key_result.pk} in [
        {"type": c["type"], "id": c["id"]} for c in changes]
    assert all(c["from"] != c["to"] for c in changes)


def test_an_objective_created_published_emits_its_event_and_a_draft_does_not(world_a, server):
    from okrs.services import create_objective

    row, _ = subscribe(world_a, server, events=["objective.published"])
    with scope(organization=world_a.org):
        admin = member(world_a)
        draft = create_objective(membership=admin, cycle=world_a.cycle,
                                 team=world_a.objective.team, title="Draft for later",
                                 is_local=True)
        published = create_objective(membership=admin, cycle=world_a.cycle,
                                     team=world_a.objective.team, title="Open a second region",
                                     parent=world_a.company_objective,
                                     state=Objective.State.PUBLISHED)
    bodies = [json.loads(d.body) for d in deliveries(subscription=row)]
    assert [b["data"]["objective"]["id"] for b in bodies] == [published.pk]
    assert draft.pk != published.pk


def test_the_sweep_deletes_settled_deliveries_older_than_a_month_and_keeps_the_rest(
        world_a, server):
    server.routes["/hook"] = (200, {}, b"")
    row, _ = subscribe(world_a, server)
    for _ in range(4):
        check_in(world_a)
    old_sent, old_failed, old_pending, recent = deliveries(subscription=row)
    for delivery in (old_sent, old_failed, recent):
        webhooks.deliver(delivery.pk)
    long_ago = timezone.now() - timedelta(days=31)
    with scopes_disabled():
        WebhookDelivery.objects.filter(pk=old_failed.pk).update(status=Status.FAILED)
        WebhookDelivery.objects.filter(pk__in=[old_sent.pk, old_failed.pk, old_pending.pk]).update(
            created_at=long_ago)
        assert WebhookAttempt.objects.filter(delivery=old_sent).exists()
    assert webhooks.prune() == 2
    assert [d.pk for d in deliveries(subscription=row)] == [old_pending.pk, recent.pk]
    with scopes_disabled():
        assert not WebhookAttempt.objects.filter(delivery_id__in=[old_sent.pk, old_failed.pk])
        assert WebhookAttempt.objects.filter(delivery=recent).count() == 1
    assert webhooks.prune() == 0
