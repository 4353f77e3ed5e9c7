"""Strategy in Chromium, on the demo: the alignment lead renames a perspective and adds a goal
in the console, links a company objective to it on the objective's form, reads the strategy
page (last quarter's score, this quarter's progress, the goals nobody served flagged) and starts
the alignment tree from the goals."""

import re

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from okrs.models import Objective

from .helpers import ARTIFACTS, field, sign_in

pytestmark = pytest.mark.e2e


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"strategy-{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_the_alignment_lead_shapes_the_strategy_and_reads_it(page, live_server, demo_org):
    sign_in(page, live_server, "liam@northwind.example")
    page.get_by_role("link", name="Strategy", exact=True).first.click()
    expect(page.get_by_role("heading", name="Strategy", level=1)).to_be_visible()
    revenue = page.locator("article", has_text="Grow recurring revenue to $20M")
    expect(revenue).to_contain_text("Reach $12M in annual recurring revenue")
    expect(revenue.get_by_test_id("score")).to_have_text(re.compile(r"Score 0\.\d\d"))
    expect(revenue.get_by_test_id("unserved")).to_have_count(0)
    ship = page.locator("article", has_text="Ship every week without breaking what works")
    expect(ship.get_by_test_id("unserved")).to_be_visible()
    shot(page, "page")

    # The console: rename a perspective, add a goal to it.
    page.get_by_role("link", name="Manage goals").click()
    perspectives = page.locator("#perspectives")
    perspectives.locator("tr", has_text="Internal process").get_by_role(
        "link", name="Rename").click()
    field(page, "Name").fill("Operations")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Perspective renamed to “Operations”.")).to_be_visible()
    page.get_by_role("link", name="Add a strategic goal").click()
    field(page, "Title").fill("Run the platform in two regions")
    field(page, "Perspective").select_option(label="Operations")
    field(page, "Horizon").fill("by 2028")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#goals")).to_contain_text("Run the platform in two regions")
    shot(page, "console")

    # A company objective serves it: chosen on the objective's form, shown on its page.
    with scopes_disabled():
        csat = Objective.objects.get(organization__slug="northwind", cycle__status="active",
                                     title="Become the product customers recommend first")
    page.goto(f"{live_server.url}/o/northwind/objectives/{csat.pk}/edit/")
    field(page, "Strategic goal").select_option(
        label="Operations: Run the platform in two regions (by 2028)")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("strategic-goal")).to_have_text("Run the platform in two regions")
    shot(page, "objective")

    # The tree starts from the goals.
    page.get_by_role("link", name="Alignment tree").click()
    page.get_by_role("link", name="strategic goals").click()
    goal = page.get_by_test_id("tree-goal").filter(has_text="Run the platform in two regions")
    expect(goal).to_contain_text("Become the product customers recommend first")
    expect(page.get_by_test_id("tree-goal").filter(
        has_text="Grow recurring revenue to $20M")).to_contain_text(
        "Reach $12M in annual recurring revenue")
    shot(page, "tree")
