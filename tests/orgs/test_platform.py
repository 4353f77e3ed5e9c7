from unittest import mock

import pytest
from django.apps import apps
from django.contrib import admin
from django.core import mail
from kombu.exceptions import OperationalError

from nudges import outbox
from nudges.tasks import deliver_email

from ..conftest import client_for
from ..factories import UserFactory

pytestmark = pytest.mark.django_db

PROJECT_APPS = {"orgs", "okrs", "dependencies", "alignment", "retros", "nudges", "api",
                "history"}


def project_models():
    return [m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS]


def test_every_model_is_in_the_platform_admin():
    missing = [m.__name__ for m in project_models() if not admin.site.is_registered(m)]
    assert missing == []


@pytest.mark.parametrize("model", project_models(), ids=lambda m: m.__name__)
def test_platform_operators_browse_every_model_across_organizations(model, world_a, world_b):
    operator = client_for(UserFactory(is_staff=True, is_superuser=True))
    opts = model._meta
    response = operator.get(f"/django-admin/{opts.app_label}/{opts.model_name}/")
    assert response.status_code == 200


def test_the_platform_admin_is_closed_to_organization_admins(world_a, alice_client):
    response = alice_client.get("/django-admin/okrs/objective/")
    assert response.status_code == 302 and "/django-admin/login/" in response["Location"]


def test_an_email_is_sent_in_process_when_the_broker_is_down(django_capture_on_commit_callbacks):
    deliver_email.app.conf.task_always_eager = False  # a broker is configured; it is down
    with mock.patch.object(deliver_email, "delay", side_effect=OperationalError("down")) as d:
        with django_capture_on_commit_callbacks(execute=True):
            outbox.queue(kind="invitation", to="dana@example.test", subject="Hello", text="Body")
    assert d.called
    assert [m.to for m in mail.outbox] == [["dana@example.test"]]
