"""Corrections in Chromium, on the demo: a mistaken check-in corrected (the history keeps it,
marked), a key result added by mistake deleted, a milestone moved (what waits on it is flagged),
a retired objective brought back."""

import re
from datetime import timedelta

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from alignment.models import Milestone
from okrs.models import Objective

from .helpers import ARTIFACTS, PASSWORD, field, sign_in

pytestmark = pytest.mark.e2e


def objective_url(live_server, title):
    with scopes_disabled():
        pk = Objective.objects.get(organization__slug="northwind", title=title,
                                   cycle__status="active").pk
    return f"{live_server.url}/o/northwind/objectives/{pk}/"


def shot(page, name):
    """A full-page screenshot. Take it after the page's htmx swaps: Chromium's full-page capture
    leaves inline styles that htmx then copies on its next swap, which the CSP refuses."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"corrections-{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_a_lead_corrects_a_check_in_and_deletes_a_key_result_added_by_mistake(
        page, live_server, demo_org):  # noqa: F811
    sign_in(page, live_server, "mia@northwind.example")
    page.goto(objective_url(live_server, "Win more enterprise customers"))
    deals = page.locator(".kr", has_text="Close 12 enterprise deals")
    # 10 of 12 deals, two weeks before the quarter ends (the demo's dates follow today).
    expect(deals.get_by_test_id("kr-current")).to_have_text("10")
    deals.locator("summary", has_text="Check-in history").click()
    deals.get_by_role("link", name="Correct").first.click()

    expect(page.get_by_role("heading", name=re.compile("Correct a check-in"))).to_be_visible()
    shot(page, "form")
    field(page, "Corrected value").fill("11")
    field(page, "Reason").fill("The Contoso deal closed on Friday")
    page.get_by_role("button", name="Save the correction").click()

    deals = page.locator(".kr", has_text="Close 12 enterprise deals")
    expect(deals.get_by_test_id("kr-current")).to_have_text("11")
    deals.locator("summary", has_text="Check-in history").click()
    expect(deals.locator(".corrected")).to_contain_text("Corrected by Mia Chen")
    expect(deals.locator(".corrected")).to_contain_text("The Contoso deal closed on Friday")

    # A key result added by mistake (a typo: "deal"), with no check-in yet, is deleted.
    page.locator("summary", has_text="Add key result").click()
    form = page.locator("#kr-new-form")
    field(form, "Title").fill("Close 12 enterprise deal")
    field(form, "Start value").fill("0")
    field(form, "Target value").fill("12")
    form.get_by_role("button", name="Add key result").click()
    mistake = page.locator(".kr").filter(has=page.get_by_text("Close 12 enterprise deal",
                                                              exact=True))
    expect(mistake).to_have_count(1)
    # It asks first: dismissing the dialog deletes nothing; accepting it deletes.
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    mistake.get_by_role("button", name="Delete key result").click()
    expect(mistake).to_have_count(1)
    assert asked and "Close 12 enterprise deal" in asked[0]
    page.once("dialog", lambda d: d.accept())
    mistake.get_by_role("button", name="Delete key result").click()
    expect(page.get_by_text("“Close 12 enterprise deal” is deleted.")).to_be_visible()
    expect(page.locator(".kr").filter(
        has=page.get_by_text("Close 12 enterprise deal", exact=True))).to_have_count(0)
    # One with check-ins offers no delete.
    deals = page.locator(".kr", has_text="Close 12 enterprise deals")
    expect(deals.get_by_role("button", name="Delete key result")).to_have_count(0)
    deals.locator("summary", has_text="Check-in history").click()
    shot(page, "history")


@pytest.mark.django_db(transaction=True)
def test_the_alignment_lead_moves_a_milestone_and_an_admin_brings_back_an_objective(
        page, live_server, demo_org):  # noqa: F811
    sign_in(page, live_server, "liam@northwind.example")
    with scopes_disabled():
        p95 = Milestone.objects.get(organization__slug="northwind",
                                    title="p95 page load under 1.5 s")
        workflow = p95.workflow_id
    page.goto(f"{live_server.url}/o/northwind/workflows/{workflow}/")
    row = page.locator(f"#milestone-{p95.pk}")
    row.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit “p95 page load under 1.5 s”")).to_be_visible()
    later = p95.due_date + timedelta(days=14)
    page.locator("#edit-milestone").get_by_label(re.compile("^Due")).fill(later.isoformat())
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Revisit: “p95 page load under 1.5 s” moved to")).to_be_visible()
    page.locator("#step-4").scroll_into_view_if_needed()
    shot(page, "plan")

    # Ava retires Marketing's brand objective by mistake and brings it back.
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")  # Ava is in two organizations
    page.locator("input[name=username]").fill("ava@northwind.example")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()
    url = objective_url(live_server, "Refresh the brand guidelines")
    page.goto(url)
    page.get_by_role("link", name="Retire").click()
    page.get_by_role("button", name="Retire objective").click()
    page.goto(url)
    shot(page, "retired")
    page.get_by_role("button", name="Bring it back").click()
    expect(page.get_by_text("“Refresh the brand guidelines” is back, published.")).to_be_visible()
    shot(page, "unretired")
