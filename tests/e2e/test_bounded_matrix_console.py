"""In Chromium: the matrix of a large organization opens a department from its row, and the
console's org tree opens a unit over htmx; both read at 1280 and at 420 pixels wide."""

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from orgs.models import Organization, Team
from tests.factories import TeamFactory

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("SCREENSHOTS", "/tmp/k3-shots"))


@pytest.mark.django_db(transaction=True)
def test_a_large_matrix_and_org_tree_open_one_level_at_a_time(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        org = Organization.objects.get(slug="northwind")
        engineering = Team.objects.get(organization=org, name="Engineering")
        for i in range(40):
            TeamFactory(organization=org, name=f"Squad {i:02}", parent=engineering)
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=username]").fill("ava@northwind.example")
    page.locator("input[name=password]").fill("northwind-demo")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    SHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/o/northwind/alignment/matrix/")
    expect(page.get_by_role("columnheader", name="Unit")).to_be_visible()
    expect(page.get_by_role("link", name="Squad 00")).to_have_count(0)
    page.screenshot(path=SHOTS / "matrix-1280.png", full_page=True)
    page.get_by_role("rowheader").get_by_role("link", name="Engineering").click()
    crumbs = page.get_by_role("navigation", name="Matrix level")
    expect(crumbs).to_contain_text("Whole organization › Engineering")
    expect(page.get_by_role("link", name="Squad 00")).to_be_visible()
    page.set_viewport_size({"width": 420, "height": 900})
    page.screenshot(path=SHOTS / "matrix-dept-420.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/o/northwind/console/teams/")
    tree = page.locator("#org-tree")
    expect(tree.get_by_role("link", name="Squad 00")).to_have_count(0)
    page.screenshot(path=SHOTS / "console-1280.png", full_page=True)
    tree.get_by_role("row", name="Engineering").get_by_role("link", name="units below").click()
    expect(tree.get_by_role("link", name="Squad 00")).to_be_visible()  # swapped in by htmx
    expect(page).to_have_url(f"{live_server.url}/o/northwind/console/teams/?unit={engineering.pk}")
    expect(tree.get_by_role("navigation", name="Tree level")).to_contain_text("Engineering")
    expect(tree.get_by_role("navigation", name="Pages")).to_contain_text("Page 1 of 2")
    page.set_viewport_size({"width": 420, "height": 900})
    page.screenshot(path=SHOTS / "console-unit-420.png", full_page=True)
