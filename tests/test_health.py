"""/healthz: database and broker reachable, answered within a second, without a session or a
sign-in, over plain http even where every other page redirects to https."""

import os
import time
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client

from . import brokers

pytestmark = pytest.mark.django_db

# "About a second": the checks' deadline is 0.9 s; the rest is slack for a busy machine.
ANSWER_BUDGET = 1.5


@pytest.fixture
def point_broker_at():
    with brokers.pointing_celery() as point:
        yield point


def get_health(client=None):
    client = client or Client()
    started = time.monotonic()
    response = client.get("/healthz")
    return response, time.monotonic() - started


def test_it_answers_ok_without_a_session_or_a_sign_in():
    response, _ = get_health()
    assert response.status_code == 200
    assert response.json() == {"status": "ok",
                               "checks": {"database": "ok", "broker": "not used"}}
    assert "sessionid" not in response.cookies and "Cookie" not in response.get("Vary", "")
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"),
                    reason="needs REDIS_URL: pings a real broker (CI sets it)")
def test_it_pings_a_real_broker(point_broker_at):
    from django.conf import settings

    point_broker_at(settings.CELERY_BROKER_URL)
    response, _ = get_health()
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_a_hung_broker_is_down_within_a_second(point_broker_at):
    server = brokers.HungBroker()
    try:
        point_broker_at(server.url)
        response, elapsed = get_health()
    finally:
        server.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down" and body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] in ("down", "timeout")
    assert elapsed < ANSWER_BUDGET, f"answered in {elapsed:.2f} s"


def test_a_refused_broker_is_down(point_broker_at):
    point_broker_at(f"redis://127.0.0.1:{brokers.closed_port()}/0")
    response, _ = get_health()
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "down"


def test_a_failing_database_is_down():
    with mock.patch.object(BaseDatabaseWrapper, "ensure_connection",
                           side_effect=OperationalError("could not connect to server")):
        response, _ = get_health()
    assert response.status_code == 503
    assert response.json() == {"status": "down",
                               "checks": {"database": "down", "broker": "not used"}}
    assert "could not connect" not in response.content.decode()  # public: no details


def test_a_hung_database_is_down_within_a_second():
    def hang(self):
        time.sleep(3)

    with mock.patch.object(BaseDatabaseWrapper, "ensure_connection", hang):
        response, elapsed = get_health()
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "timeout"
    assert elapsed < ANSWER_BUDGET, f"answered in {elapsed:.2f} s"


def test_it_answers_over_plain_http_where_pages_redirect_to_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/accounts/login/").status_code == 301
    response, _ = get_health(client)
    assert response.status_code == 200


def test_it_only_reads():
    # As a real client sends it: no CSRF token. A POST is "method not allowed", not a 403.
    client = Client(enforce_csrf_checks=True)
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


def test_a_probe_during_an_outage_logs_the_reason_once_and_no_error(caplog):
    with mock.patch.object(BaseDatabaseWrapper, "ensure_connection",
                           side_effect=OperationalError("could not connect to server")):
        response, _ = get_health()
    assert response.status_code == 503
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert errors == [], [r.getMessage() for r in errors]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("Health check database failed" in w and "could not connect" in w
               for w in warnings)
