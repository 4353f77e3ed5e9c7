"""In Chromium, on the demo: an Engineering slip (the SSO key result, Engineering's, on the
Sales objective) shows on the Sales objective as at risk, not off track, and its Why page names
SSO as the cause, not Sales' own key result "Raise average deal size"."""

import re

import pytest
from playwright.sync_api import expect

from .helpers import ARTIFACTS, field, sign_in

pytestmark = pytest.mark.e2e

SALES = "Win more enterprise customers"
SSO = "SSO available to enterprise prospects"
DEAL_SIZE = "Raise average deal size from $40k to $55k"


@pytest.mark.django_db(transaction=True)
def test_an_engineering_slip_makes_sales_at_risk_and_the_why_page_names_sso(
        page, live_server, demo_org):
    from django_scopes import scopes_disabled

    from okrs.models import Objective

    with scopes_disabled():
        sales = Objective.objects.get(title=SALES)
    objective_url = f"{live_server.url}/o/northwind/objectives/{sales.pk}/"

    # Ethan (Engineering) checks SSO in off track.
    sign_in(page, live_server, "ethan@northwind.example")
    page.goto(objective_url)
    sso = page.locator("#key-results li.kr").filter(has_text=SSO)
    sso.get_by_role("link", name="Check in").click()
    check_in = sso.locator("form.checkin-form")
    expect(check_in).to_be_visible()
    field(check_in, "Done?").select_option(label="Not yet")
    field(check_in, "Off track").check()
    field(check_in, "Note").fill("The identity vendor slipped three weeks")
    check_in.get_by_role("button", name="Save check-in").click()
    expect(page.locator("#key-results li.kr").filter(has_text=SSO)
           .locator("[data-testid=kr-health]")).to_have_text("Off track")
    page.get_by_role("button", name="Sign out").click()

    # Mia (Sales) opens her objective: at risk because of other work, never off track.
    sign_in(page, live_server, "mia@northwind.example")
    page.goto(objective_url)
    summary = page.locator("#objective-summary")
    upstream = summary.get_by_test_id("upstream-risk")
    expect(upstream).to_contain_text("At risk from upstream")
    expect(summary).not_to_contain_text("Off track")
    reasons = page.locator("#reasons")
    expect(reasons.locator("[data-reason=own]")).to_contain_text(
        "Sales’ own key results are on track taken together.")
    expect(reasons.locator("[data-reason=rollup]")).to_contain_text(
        f"“{SSO}”, Engineering’s key result, is off track.")
    expect(reasons.locator("[data-reason=upstream]")).to_contain_text(
        f"depends on “{SSO}” (Engineering), which is off track.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "why-truth-objective.png"), full_page=True)

    # Its Why page names SSO as the cause, and not Sales' own key result.
    upstream.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Why is “{SALES}” at risk?")
    chains = page.get_by_test_id("risk-path")
    expect(chains.first.locator("li").first).to_contain_text(SSO)
    expect(chains.first.locator("li").first).to_contain_text("Engineering")
    for i in range(chains.count()):
        expect(chains.nth(i)).not_to_contain_text(DEAL_SIZE)
    expect(page.locator("[data-reason=rollup]")).not_to_contain_text(DEAL_SIZE)
    expect(page.locator("[data-reason=upstream]")).not_to_contain_text(DEAL_SIZE)
    expect(page.locator("body")).not_to_contain_text("its own check-ins and pace are not the")
    page.screenshot(path=str(ARTIFACTS / "why-truth-why.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_a_stale_key_result_shows_stale_instead_of_a_health(page, live_server, demo_org):
    from django_scopes import scopes_disabled

    from okrs.models import Objective

    with scopes_disabled():
        toil = Objective.objects.get(title="Pay down on-call toil")
    sign_in(page, live_server, "ethan@northwind.example")
    # Home: the objective shows one health (its fresh KRs), never a health beside "Stale".
    row = page.locator(".obj-row").filter(has_text="Pay down on-call toil")
    expect(row.locator(".health")).to_have_text("On track")
    page.goto(f"{live_server.url}/o/northwind/objectives/{toil.pk}/")
    runbooks = page.locator("#key-results li.kr").filter(has_text="Runbooks for every alert")
    expect(runbooks.get_by_test_id("kr-health")).to_have_text("Stale")
    expect(page.locator("#reasons [data-reason=own]")).to_contain_text(
        re.compile(r"“Runbooks for every alert” is stale: no check-in for \d+ days, so it "
                   r"counts as unknown\."))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "why-truth-stale.png"), full_page=True)
