"""A real Celery worker on Redis: the beat's sweep, published to the broker, makes the worker
pull a due data source from a local server and post the check-in's webhook to another path of
it. Needs PostgreSQL and Redis (CI); skipped elsewhere with the reason."""

import json
import os

import pytest
from django_scopes import scope, scopes_disabled

from integrations import sources, tasks, webhooks
from integrations.models import DataSource, WebhookDelivery
from okrs.models import CheckIn, KeyResult
from orgs.models import Membership
from tests.dependencies.test_worker import _wait_for, worker  # noqa: F401 - the fixture

from .conftest import allow_private

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"),
                       reason="needs REDIS_URL: a real worker needs a real broker (CI sets it)"),
    pytest.mark.django_db(transaction=True),
]


def test_a_worker_pulls_a_due_source_and_posts_the_webhook(world_a, server, worker):  # noqa: F811
    server.routes["/bi"] = (200, {}, {"data": {"total": 77}})
    server.routes["/hook"] = (200, {}, b"")
    allow_private(world_a.org)
    with scope(organization=world_a.org):
        membership = Membership.objects.select_related("organization", "user").get(
            user=world_a.admin.user)
        kr = KeyResult.objects.select_related("objective__cycle", "organization").get(
            pk=world_a.key_result.pk)
        sources.save_source(membership=membership, key_result=kr, kind="pull",
                            url=server.url("/bi"), json_path="data.total", interval_minutes=60)
        webhooks.save_subscription(membership=membership, url=server.url("/hook"),
                                   events=["check_in.created"])
    tasks.sweep_integrations.delay()

    def pulled():
        with scopes_disabled():
            return CheckIn.objects.filter(key_result=world_a.key_result,
                                          source="data_source").first()

    log = worker / "worker.log"
    check_in = _wait_for(pulled)
    assert check_in is not None, log.read_text()[-3000:]
    with scopes_disabled():
        assert DataSource.objects.get(key_result=world_a.key_result).failures == 0

    def delivered():
        with scopes_disabled():
            return WebhookDelivery.objects.filter(
                status="sent", subscription__url=server.url("/hook")).first()

    assert _wait_for(delivered), log.read_text()[-3000:]
    [hook] = [r for r in server.received if r["path"] == "/hook"]
    assert json.loads(hook["body"])["data"]["check_in"]["id"] == check_in.pk
