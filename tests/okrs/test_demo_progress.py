"""On the demo, the company objectives' progress reflects their departments' work."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_scopes import scopes_disabled

from okrs.models import Objective
from orgs.models import User
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_the_demo_company_objectives_count_their_aligned_objectives(
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=StringIO())
    with scopes_disabled():
        arr = Objective.objects.get(organization__slug="northwind", cycle__status="active",
                                    title="Reach $12M in annual recurring revenue")
        ava = User.objects.get(email="ava@northwind.example")
    assert arr.progress_mode == "aligned" and arr.rolled_progress is not None
    html = client_for(ava).get(reverse("home", args=["northwind"])).content.decode()
    assert f'value="{round(arr.rolled_progress * 100)}"' in html
    page = client_for(ava).get(reverse("objective", args=["northwind", arr.pk])).content.decode()
    assert "Progress counts its key results and its aligned objectives" in page
    assert "Win more enterprise customers" in page
