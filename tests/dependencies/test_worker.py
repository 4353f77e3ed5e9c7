"""A real Celery worker on Redis picks up the recompute that a check-in enqueues, and sends the
alert email. It needs a broker and a database that another process can reach: CI provides
PostgreSQL and Redis; elsewhere the test is skipped and says why."""

import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_scopes import scope, scopes_disabled

from okrs.models import KeyResult
from okrs.services import record_check_in

pytestmark = [
    pytest.mark.skipif(not os.environ.get("REDIS_URL"),
                       reason="needs REDIS_URL: a real worker needs a real broker (CI sets it)"),
    pytest.mark.django_db(transaction=True),
]


def _database_url():
    db = settings.DATABASES["default"]
    user = quote(db["USER"] or "")
    password = quote(db["PASSWORD"] or "")
    return (f"postgresql://{user}:{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
            f"/{db['NAME']}")


@pytest.fixture
def worker(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the worker process must reach the test database")
    from config.celery import app

    app.conf.task_always_eager = False  # the autouse fixture restores it afterwards
    app.control.purge()
    env = os.environ | {
        "DATABASE_URL": _database_url(),
        "EMAIL_FILE_PATH": str(tmp_path),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    env.pop("EMAIL_HOST", None)
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
         "--loglevel", "INFO", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield tmp_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_for(check, timeout=40):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    return None


def _sso_slips(r):
    """Ethan checks SSO in off track: once recomputed, the deals key result that depends on it
    is at risk."""
    with scope(organization=r.org), transaction.atomic():
        sso = KeyResult.objects.select_related("objective__cycle", "objective__team").get(
            pk=r.sso.pk)
        record_check_in(membership=r.ethan_m, key_result=sso, confidence="off_track",
                        is_done=False, note="The identity vendor slipped")


def _deals_at_risk(r):
    with scope(organization=r.org):
        return KeyResult.objects.get(pk=r.deals.pk).effective_health == "at_risk"


def test_a_worker_recomputes_health_and_sends_the_alert_after_a_check_in(revenue, worker):
    r = revenue
    _sso_slips(r)
    log = (worker / "worker.log")
    assert _wait_for(partial(_deals_at_risk, r)), log.read_text()[-3000:]

    def email_to_mia():
        for f in Path(worker).glob("*.log"):
            if f.name != "worker.log" and "mia@a.test" in f.read_text():
                return f.read_text()
        return None

    body = _wait_for(email_to_mia)
    assert body, log.read_text()[-3000:]
    assert "Close 3 enterprise deals" in body and "Ship SSO" in body


def test_a_started_worker_reads_the_saved_state_back_before_its_first_run(revenue, worker):
    """A worker process that starts reads back the newest saved network state in the
    background (``network.warm_start``) before any task comes: its first recompute is then a
    warm run, which reads nothing back and saves nothing, and stores what it should."""
    from dependencies import network
    from dependencies.models import NetworkSnapshot

    r = revenue
    with scope(organization=r.org):
        network.run(r.cycle)  # a run from nothing: saves the cycle's state
    with scopes_disabled():
        saved = NetworkSnapshot.objects.values_list("cycle_id", "saved_at").get()
    assert saved[0] == r.cycle.pk
    log = (worker / "worker.log")
    line = f"Warm start: the saved network state of cycles {r.cycle.pk} read back"
    assert _wait_for(lambda: line in log.read_text()), log.read_text()[-3000:]
    _sso_slips(r)
    assert _wait_for(partial(_deals_at_risk, r)), log.read_text()[-3000:]
    text = log.read_text()
    assert text.index(line) < text.index("Task dependencies.tasks.propagate_cycle["), text[-3000:]
    assert "saved network state is not used" not in text, text[-3000:]
    with scopes_disabled():  # read back early, as fresh as a save: the run saved nothing
        assert NetworkSnapshot.objects.values_list("cycle_id", "saved_at").get() == saved
