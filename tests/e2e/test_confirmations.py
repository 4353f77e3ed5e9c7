"""In Chromium, a destructive button asks first: dismissing the dialog changes nothing."""

import io

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from orgs.models import Organization, Theme

from .helpers import ARTIFACTS, sign_in

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_remove_theme_shows_a_dialog_and_cancel_deletes_nothing(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        org = Organization.objects.get(slug="northwind")
        theme = Theme.objects.create(organization=org, name="Enterprise readiness")
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/alignment/settings/")
    item = page.locator("li", has_text="Enterprise readiness")

    asked = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    item.get_by_role("button", name="Remove").click()
    page.wait_for_timeout(300)  # a post, had one been sent, would have reloaded the page
    assert asked == ["Remove the theme “Enterprise readiness”?"]
    expect(item).to_be_visible()
    assert Theme.objects.with_scopes_disabled().filter(pk=theme.pk).exists()

    page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("Theme removed")).to_be_visible()
    expect(page.locator("li", has_text="Enterprise readiness")).to_have_count(0)
    assert not Theme.objects.with_scopes_disabled().filter(pk=theme.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_without_javascript_remove_theme_opens_a_page_that_asks(browser, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        org = Organization.objects.get(slug="northwind")
        theme = Theme.objects.create(organization=org, name="Enterprise readiness")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280,
                                                                        "height": 900})
    page = context.new_page()
    try:
        sign_in(page, live_server, "liam@northwind.example")
        page.goto(f"{live_server.url}/o/northwind/alignment/settings/")
        page.locator("li", has_text="Enterprise readiness").get_by_role(
            "button", name="Remove").click()
        expect(page.get_by_role("heading", name="Remove the theme “Enterprise readiness”?")
               ).to_be_visible()
        assert Theme.objects.with_scopes_disabled().filter(pk=theme.pk).exists()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "confirm-page.png")
        page.get_by_role("link", name="Cancel").click()
        assert Theme.objects.with_scopes_disabled().filter(pk=theme.pk).exists()
        page.go_back()
        page.get_by_role("button", name="Remove theme").click()
        expect(page.get_by_text("Theme removed")).to_be_visible()
        assert not Theme.objects.with_scopes_disabled().filter(pk=theme.pk).exists()
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
def test_an_htmx_form_asks_too_remove_a_workflow_team(page, live_server):
    """The workflow's forms post over htmx: the dialog stops htmx too, and OK sends confirm."""
    from alignment.models import Stakeholder, Workflow

    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        wf = Workflow.objects.get(organization__slug="northwind", is_closed=False)
        stakeholder = Stakeholder.objects.get(workflow=wf, team__name="Customer Success")
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/workflows/{wf.pk}/")
    row = page.locator("#step-2 tr", has_text="Customer Success")
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="Remove").click()
    page.wait_for_timeout(300)
    assert Stakeholder.objects.with_scopes_disabled().filter(pk=stakeholder.pk).exists()

    asked = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name="Remove").click()
    expect(page.locator("#step-2 tr", has_text="Customer Success")).to_have_count(0)
    assert asked == ["Remove Customer Success from this workflow?"]
    assert not Stakeholder.objects.with_scopes_disabled().filter(pk=stakeholder.pk).exists()
