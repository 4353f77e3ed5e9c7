"""Drafting with suggestions, then the history, in Chromium on the demo: Ethan drafts a Web App
objective, the form suggests Engineering's "Make the platform fast and dependable" (with the
words it shares), "Use" fills the parent picker; he saves, renames it, and its history page
shows both steps in words; the console's history finds them."""

import pytest
from playwright.sync_api import expect

from .helpers import ARTIFACTS, field, sign_in

pytestmark = pytest.mark.e2e


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"history-{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_a_lead_accepts_a_suggested_parent_and_reads_the_history(page, live_server, demo_org):
    sign_in(page, live_server, "ethan@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/objectives/new/")
    field(page, "Team").select_option(label="Web App")
    field(page, "Title").fill("Make every page of the web app fast")
    field(page, "Why it matters").fill("Slow pages are a top reason in churn interviews.")
    suggestions = page.get_by_test_id("parent-suggestions")
    suggestion = suggestions.locator("li", has_text="Make the platform fast and dependable")
    expect(suggestion).to_contain_text("Shares")
    shot(page, "suggestions")
    suggestion.get_by_role("button", name="Use").click()
    expect(page.locator(".picker-chosen", has_text="Make the platform fast and dependable")
           ).to_be_visible()
    page.get_by_role("button", name="Add objective").click()
    expect(page.get_by_role("heading", name="Make every page of the web app fast")
           ).to_be_visible()

    page.goto(page.url.rstrip("/") + "/edit/")
    field(page, "Title").fill("Make every web app page load in a second")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Make every web app page load in a second")
           ).to_be_visible()

    page.get_by_test_id("history-link").click()
    entries = page.get_by_test_id("history-entry")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_contain_text("Ethan Brooks changed this objective")
    expect(entries.nth(0)).to_contain_text(
        "“Make every page of the web app fast” → “Make every web app page load in a second”")
    expect(entries.nth(1)).to_contain_text("Ethan Brooks created this objective")
    expect(entries.nth(1)).to_contain_text("Make the platform fast and dependable")
    shot(page, "timeline")

    page.context.clear_cookies()
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/console/history/?person=ethan&q=web+app")
    expect(page.get_by_text("2 changes found.")).to_be_visible()
    shot(page, "console")
