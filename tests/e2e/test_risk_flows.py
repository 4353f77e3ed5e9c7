"""In Chromium, on the demo: a company objective counts its departments' work, shows its
impact while at risk, and the objectives below it say so."""

import re

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from okrs.models import Objective

from .helpers import ARTIFACTS, PASSWORD, field

pytestmark = pytest.mark.e2e

ARR = "Reach $12M in annual recurring revenue"
SALES = "Win more enterprise customers"


@pytest.mark.django_db(transaction=True)
def test_an_at_risk_company_objective_shows_its_parts_and_impact_and_flags_below(
        page, live_server, demo_org):  # noqa: F811
    with scopes_disabled():
        arr = Objective.objects.get(organization__slug=demo_org, cycle__status="active",
                                    title=ARR)
        sales = Objective.objects.get(organization__slug=demo_org, cycle__status="active",
                                      title=SALES)
    assert arr.effective_health in ("at_risk", "off_track")
    # Ava, the admin, belongs to two organizations: she signs in and opens the demo's.
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=username]").fill("ava@northwind.example")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/orgs/$"))
    page.goto(f"{live_server.url}/o/northwind/objectives/{arr.pk}/")
    parts = page.get_by_test_id("progress-parts")
    expect(parts).to_contain_text("Progress counts its key results and its aligned objectives")
    expect(parts.get_by_role("link", name=SALES)).to_be_visible()
    impact = page.get_by_test_id("impact")
    expect(impact).to_contain_text("people on those teams")
    expect(impact.locator("ol.causes li").first).to_contain_text("weighs")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "impact-1280.png"), full_page=True)
    page.set_viewport_size({"width": 420, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "impact-420.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Below it, Sales' objective says the objective it contributes to is at risk.
    page.goto(f"{live_server.url}/o/northwind/objectives/{sales.pk}/")
    flag = page.get_by_test_id("risk-above")
    expect(flag).to_contain_text("The objective this contributes to is at risk")
    page.screenshot(path=str(ARTIFACTS / "risk-above-1280.png"))
    flag.get_by_role("link", name=ARR).click()
    expect(page).to_have_url(re.compile(rf"/objectives/{arr.pk}/$"))

    # Ava owns the company objectives: her alerts say what an at-risk one affects.
    page.goto(f"{live_server.url}/o/northwind/alerts/")
    expect(page.locator(".alert-list")).to_contain_text("people")
    page.screenshot(path=str(ARTIFACTS / "alerts-impact.png"), full_page=True)

    # The edit form sets how progress is counted.
    page.goto(f"{live_server.url}/o/northwind/objectives/{arr.pk}/edit/")
    expect(field(page, "Key results and aligned objectives")).to_be_checked()
    page.screenshot(path=str(ARTIFACTS / "progress-mode-form.png"), full_page=True)
    field(page, "Own key results").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("progress-parts")).to_contain_text(
        "Progress counts its own key results only")
