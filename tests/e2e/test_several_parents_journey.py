"""In Chromium, on the demo: Ethan says Engineering's "Make the platform fast and dependable"
also serves the company's revenue objective (two parents, equal shares), then asks Customer
Success to take over part of its work: a dependency of the kind "delegation", whose plan B is
asked in that kind's words. Screenshots of the objective with two parents and of the form."""

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from dependencies import kinds
from okrs.models import Objective, ObjectiveParent

from .helpers import ARTIFACTS, field, sign_in

pytestmark = pytest.mark.e2e

ENG = "Make the platform fast and dependable"
ARR = "Reach $12M in annual recurring revenue"
CS = "Resolve customer issues quickly and for good"


@pytest.mark.django_db(transaction=True)
def test_ethan_gives_an_objective_a_second_parent_and_delegates_part_of_it(
        page, live_server, demo_org):
    with scopes_disabled():
        eng = Objective.objects.get(organization__slug=demo_org, cycle__status="active",
                                    title=ENG)
    base = f"{live_server.url}/o/{demo_org}"
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(page, live_server, "ethan@northwind.example")

    # The form's "Also contributes to" is a search field that adds chips.
    page.goto(f"{base}/objectives/{eng.pk}/edit/")
    field(page, "Also contributes to").fill("annual recurring")
    choice = page.get_by_role("button", name=f"Northwind Cloud: {ARR}", exact=True)
    choice.focus()
    choice.press("Enter")
    expect(page.locator(".picker-chips .chip", has_text=ARR)).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{base}/objectives/{eng.pk}/")
    with scopes_disabled():
        link = ObjectiveParent.objects.get(objective=eng)
    assert link.parent.title == ARR and str(link.share) == "0.5000"
    # The objective shows both parents, each with its share.
    summary = page.locator("#objective-summary")
    expect(summary).to_contain_text("(50%, main parent)")
    expect(summary.get_by_test_id("also-contributes-to")).to_have_text(ARR)
    page.screenshot(path=str(ARTIFACTS / "objective-two-parents.png"), full_page=True)
    # The second parent lists it among its aligned objectives, with its share there.
    summary.get_by_test_id("also-contributes-to").click()
    expect(page.get_by_test_id("also-tag")).to_have_text("Also contributes here, 50%")

    # A dependency of the kind "delegation": the plan B is asked in its words.
    page.goto(f"{base}/network/o/{eng.pk}/depends-on/")
    fallback = field(page, "If it slips")
    expect(fallback).to_have_attribute("placeholder", kinds.WORDING["supporting"].fallback)
    page.get_by_label(f"Delegation: {kinds.WORDING['delegation'].explain}").check()
    fallback = field(page, "If it slips")
    expect(fallback).to_have_attribute("placeholder", kinds.WORDING["delegation"].fallback)
    # The kind's change swapped the whole form in (htmx): let that settle before searching,
    # and give the search the time a loaded CI machine may need.
    page.wait_for_load_state("networkidle")
    field(page, "Depends on").fill("resolve customer")
    choice = page.get_by_role("button", name=f"Objective: {CS}")
    expect(choice).to_be_visible(timeout=30_000)
    choice.focus()
    choice.press("Enter")
    expect(page.locator(".picker-chosen", has_text=f"Objective: {CS}")).to_be_visible()
    field(page, "What exactly do you need?").fill("Own the status page during incidents")
    with scopes_disabled():
        end = eng.cycle.end_date
    field(page, "Needed by").fill(end.isoformat())
    fallback.fill("We keep the status page and slow the uptime work by a week.")
    page.screenshot(path=str(ARTIFACTS / "dependency-kind-form.png"), full_page=True)
    page.get_by_role("button", name="Send the request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Engineering delegates to Customer Success")
    expect(page.get_by_test_id("dependency-kind")).to_have_text("Delegation")
