"""In Chromium, on the demo: a closed cycle's objective offers no change and says so, with a
link to the open cycle; the alignment lead asks leadership to sign off a workflow's purpose."""

import io
import re

import pytest
from django.core.management import call_command
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from alignment import services as workflow_services
from nudges.models import OutboundEmail
from okrs.models import Objective
from orgs.models import Cycle, Membership, Organization

from .helpers import ARTIFACTS, sign_in

pytestmark = pytest.mark.e2e
ARR = "Reach $12M in annual recurring revenue"


@pytest.mark.django_db(transaction=True)
def test_a_closed_cycle_objective_is_read_only_and_points_to_the_open_cycle(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        closed = Cycle.objects.get(organization__slug="northwind", status="closed")
        old = Objective.objects.get(cycle=closed, title=ARR)
        current = Cycle.objects.get(organization__slug="northwind", status="active")
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/objectives/{old.pk}/")
    banner = page.get_by_test_id("closed-cycle")
    expect(banner).to_contain_text(f"{closed.name} is closed.")
    for name in ("Edit", "Retire", "Align an objective to this"):
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_text("Add key result")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "closed-cycle-objective.png", full_page=True)
    banner.get_by_role("link", name=f"Go to {current.name}").click()
    expect(page).to_have_url(re.compile(rf"/o/northwind/\?cycle={current.pk}$"))
    expect(page.get_by_role("link", name="Add objective")).to_have_count(1)
    expect(page.get_by_test_id("closed-cycle")).to_have_count(0)


@pytest.mark.django_db(transaction=True)
def test_the_alignment_lead_asks_leadership_to_sign_off(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        org = Organization.objects.get(slug="northwind")
        liam = Membership.objects.get(organization=org, user__email="liam@northwind.example")
        arr = Objective.objects.get(cycle__status="active", cycle__organization=org, title=ARR)
    with scope(organization=org):
        wf = workflow_services.start_workflow(membership=liam, objective=arr)
        workflow_services.save_purpose(membership=liam, workflow=wf,
                                       purpose="Reach $12M ARR through enterprise wins.",
                                       impact="Enterprise deals are a third of new ARR.")
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/workflows/{wf.pk}/")
    ask = page.get_by_test_id("sign-off-ask")
    expect(ask).to_contain_text("Leadership signs off: Ava Thompson.")
    ask.get_by_role("button", name="Ask them to sign off").click()
    expect(page.get_by_text("Asked Ava Thompson to sign off.")).to_be_visible()
    expect(page.get_by_test_id("sign-off-ask")).to_contain_text("Sign-off asked by Liam Okafor")
    expect(page.get_by_test_id("sign-off-ask").get_by_role("button")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "sign-off-asked.png", full_page=False)
    with scopes_disabled():
        sent = OutboundEmail.objects.filter(subject=f"Sign-off asked: {ARR}")
        assert [e.to for e in sent] == ["ava@northwind.example"]
