"""A department head keeps his unit, in Chromium, on the demo: Ethan (head of Engineering) edits
Engineering's charter and the Uptime KPI's band, records a value that makes it unhealthy, and
accepts the recovery objective offered, with the suggested parent."""

import re

import pytest
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from okrs import scorecards
from okrs.models import KPI, Objective
from orgs.models import Organization, Team

from .helpers import ARTIFACTS, field, sign_in

pytestmark = pytest.mark.e2e


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"unit-{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_ethan_keeps_engineering_and_recovers_an_unhealthy_kpi(page, live_server, demo_org):
    with scopes_disabled():
        engineering = Team.objects.get(organization__slug="northwind", name="Engineering")
        uptime = KPI.objects.get(team=engineering, name="Uptime")
    sign_in(page, live_server, "ethan@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/teams/{engineering.pk}/")
    card = page.get_by_test_id("scorecard")
    expect(card.get_by_test_id(f"kpi-{uptime.pk}").get_by_test_id("kpi-health")).to_have_text(
        "Healthy")
    expect(page.get_by_test_id("type-hint")).to_contain_text("enabling team")
    shot(page, "team-before")

    # His unit's own page: the charter.
    page.get_by_test_id("edit-unit").click()
    expect(page.get_by_role("heading", name="Edit Engineering", level=1)).to_be_visible()
    field(page, "Charter").fill("Builds and runs the platform every other team stands on.")
    page.get_by_role("button", name="Save the charter").click()
    expect(page.locator(".messages")).to_contain_text("charter saved")

    # The Uptime KPI's band: warning from 99.5 now.
    page.get_by_test_id(f"edit-kpi-{uptime.pk}").get_by_role("link", name="Edit Uptime").click()
    field(page, "Warning from").fill("99.5")
    page.get_by_role("button", name="Save the KPI").click()
    row = page.get_by_test_id(f"edit-kpi-{uptime.pk}")
    expect(row).to_contain_text("warning from 99.5%")
    shot(page, "edit")

    # Back on the team page: a value below the warning band.
    page.get_by_role("link", name="Engineering").first.click()
    expect(page.get_by_text("Builds and runs the platform every other team stands on.")
           ).to_be_visible()
    kpi = page.get_by_test_id(f"kpi-{uptime.pk}")
    kpi.get_by_label("New value of Uptime").fill("99.2")
    kpi.get_by_role("button", name="Record").click()
    kpi = page.get_by_test_id(f"kpi-{uptime.pk}")
    expect(kpi.get_by_test_id("kpi-health")).to_have_text("Unhealthy")
    expect(kpi.locator("polyline")).to_have_count(1)
    shot(page, "team-unhealthy")

    # The offered recovery objective, with the suggested parent.
    with scope(organization=Organization.objects.get(slug="northwind")):
        kpi_row = KPI.objects.select_related("team", "organization").get(pk=uptime.pk)
        suggested, _ = scorecards.suggest_parent_for_recovery(
            kpi_row, scorecards.current_cycle(kpi_row.organization))
    assert suggested is not None
    kpi.get_by_test_id("offer-recovery").click()
    offer = page.get_by_test_id("recovery-offer")
    expect(offer).to_contain_text(f"Contributes to {suggested.title}")
    expect(field(offer, "Title")).to_have_value("Bring Uptime back to healthy")
    expect(offer.get_by_test_id("suggested-parent")).to_be_checked()
    shot(page, "offer")
    offer.get_by_role("button", name="Draft the recovery objective").click()
    expect(page.get_by_role("heading", name="Bring Uptime back to healthy")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/o/northwind/objectives/\d+/$"))
    expect(page.locator("main")).to_contain_text(suggested.title)
    shot(page, "objective")
    with scopes_disabled():
        drafted = Objective.objects.get(recovery_kpi_id=uptime.pk)
    assert (drafted.team_id, drafted.parent_id, drafted.state) == (
        engineering.pk, suggested.pk, "draft")

    # Its history, and the unit's, show each step, by Ethan.
    page.goto(f"{live_server.url}/o/northwind/objectives/{drafted.pk}/history/")
    timeline = page.locator("main")
    expect(timeline).to_contain_text("Ethan Brooks created this objective")
    expect(timeline).to_contain_text("Recovery kpi set to “Uptime”")
    page.goto(f"{live_server.url}/o/northwind/teams/{engineering.pk}/history/")
    timeline = page.locator("main")
    expect(timeline).to_contain_text("Builds and runs the platform every other team stands on.")
    expect(timeline).to_contain_text("the KPI “Uptime”")
    expect(timeline).to_contain_text("the KPI value “value of Uptime”")
    shot(page, "history")


@pytest.mark.django_db(transaction=True)
def test_the_report_and_the_map_show_scorecards_and_team_types(page, live_server, demo_org):
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/alignment/report/")
    units = page.get_by_test_id("unit-findings")
    # The demo's Customer Success lets gross retention slip below its warning band.
    expect(units).to_contain_text("Gross retention is 87%, unhealthy")
    units.scroll_into_view_if_needed()
    shot(page, "report")
    page.goto(f"{live_server.url}/o/northwind/alignment/map/")
    expect(page.get_by_test_id("type-legend")).to_be_visible()
    expect(page.locator('svg.netmap a[data-type="enabling"]')).not_to_have_count(0)
    shot(page, "map")
