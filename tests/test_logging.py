"""Failures are logged with their organization and object, through the production logging
configuration (settings.LOGGING: one handler on the root logger, whatever DEBUG says; the tests
run with DEBUG off, as production does)."""

import io
import logging
import smtplib
from unittest import mock

import pytest
from celery import shared_task
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client

from config.logs import ContextFilter
from dependencies.tasks import propagate_cycle
from nudges import outbox
from nudges.tasks import deliver_email
from orgs.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_output():
    """What the configured handler writes (stderr in production), as text."""
    [handler] = [h for h in logging.getLogger().handlers
                 if any(isinstance(f, ContextFilter) for f in h.filters)]
    stream = io.StringIO()
    before = handler.setStream(stream)
    yield stream
    handler.setStream(before)


class BrokenMailServer(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def lines_with(output, *words):
    return [line for line in output.getvalue().splitlines() if all(w in line for w in words)]


def test_a_failing_task_logs_its_name_arguments_and_organization(world_a, log_output):
    # What a worker does with a task that raises: Celery's failure path, not re-raised here.
    with mock.patch("dependencies.network.run", side_effect=RuntimeError("boom")):
        result = propagate_cycle.apply(args=(world_a.cycle.pk,), throw=False)
    assert result.failed()
    [line] = lines_with(log_output, "ERROR", "dependencies.tasks.propagate_cycle", "failed")
    assert f"[org=org-a obj=cycle {world_a.cycle.pk}]" in line
    assert "RuntimeError: boom" in line and f"args=[{world_a.cycle.pk}]" in line
    # Celery's own line, with the traceback, names them too.
    [trace] = lines_with(log_output, "ERROR", "celery.app.trace", "raised unexpected")
    assert f"[org=org-a obj=cycle {world_a.cycle.pk}]" in trace


def test_an_email_that_fails_on_a_worker_is_logged_with_its_organization_and_row(
        world_a, settings, log_output):
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.BrokenMailServer"}}
    row = outbox.queue(kind=outbox.Kind.INVITATION, to="dana@example.test", subject="Join us",
                       text="Accept here: http://example.test/invitations/secret/",
                       organization=world_a.org, enqueue=False)
    # As a worker runs it: no request, no scope; the row's id is all the task has.
    deliver_email.apply(args=(row.pk,))
    [line] = lines_with(log_output, "WARNING", "not sent")
    assert f"[org=org-a obj=outboundemail {row.pk}]" in line
    assert "Connection unexpectedly closed" in line


@pytest.mark.django_db(transaction=True)
def test_an_invitation_email_that_fails_is_logged_with_its_organization_not_its_link(
        world_a, alice_client, settings, log_output):
    # A real commit: the email is sent at the end of the request, inside its organization.
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.BrokenMailServer"}}
    response = alice_client.post("/o/org-a/console/members/",
                                 {"email": "dana@example.test", "role": Role.MEMBER})
    assert response.status_code == 302
    [line] = lines_with(log_output, "WARNING", "not sent")
    assert "[org=org-a obj=outboundemail " in line
    assert "/invitations/" not in log_output.getvalue()


def test_a_500_logs_the_organization_slug_and_the_object_from_the_url(world_a, alice,
                                                                      log_output):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    with mock.patch("okrs.services.record_check_in", side_effect=RuntimeError("kaput")):
        response = client.post(f"/o/org-a/key-results/{world_a.key_result.pk}/check-in/",
                               {"confidence": "on_track", "value": "5"})
    assert response.status_code == 500
    [line] = lines_with(log_output, "ERROR", "django.request", "Internal Server Error")
    assert f"[org=org-a obj=key_result {world_a.key_result.pk}]" in line
    assert "RuntimeError: kaput" in log_output.getvalue()  # and the traceback follows


@shared_task
def complain_about_cycle(cycle_id):
    logging.getLogger("tests.tasks").info("Starting")
    logging.getLogger("tests.tasks").warning("Cycle %s looks odd", cycle_id)


def test_a_warning_inside_a_task_names_the_organization_of_its_arguments(world_a, log_output):
    # Outside any scope, as a task that logs before it opens one (or never does).
    complain_about_cycle.apply(args=(world_a.cycle.pk,))
    [warning] = lines_with(log_output, "WARNING", "looks odd")
    assert f"[org=org-a obj=cycle {world_a.cycle.pk}]" in warning
    # An info line costs no lookup: outside a scope it names the object only.
    [info] = lines_with(log_output, "INFO", "Starting")
    assert f"[org=- obj=cycle {world_a.cycle.pk}]" in info


def test_a_line_logged_inside_an_organization_scope_names_it(world_a, log_output):
    from django_scopes import scope

    with scope(organization=world_a.org):
        logging.getLogger("okrs.services").warning("Something odd")
    assert lines_with(log_output, "WARNING", "[org=org-a obj=-]", "Something odd")


def test_a_line_outside_any_organization_still_formats(log_output):
    logging.getLogger("anything").error("No context at all")
    assert lines_with(log_output, "ERROR", "[org=- obj=-]", "No context at all")

