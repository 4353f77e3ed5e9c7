"""In a real browser: the top bar's search as you type, and an OKR import's dry run then
import. Screenshots land in $SCREENSHOT_DIR when it is set."""

import os

import pytest
from playwright.sync_api import expect

from .helpers import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def shot(page, name):
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=os.path.join(folder, name), full_page=False)


def test_the_top_bar_finds_as_you_type_and_opens_a_result(page, live_server, demo_org):
    sign_in(page, live_server, "olivia@northwind.example")  # a viewer searches too
    box = page.get_by_role("searchbox", name="Search Northwind")
    box.fill("onb")
    dropdown = page.locator("#top-results [data-testid=search-dropdown]")
    expect(dropdown).to_be_visible()
    expect(dropdown.get_by_role("heading", name="Objectives")).to_be_visible()
    shot(page, "search-dropdown.png")
    first = dropdown.locator("a").first
    title = first.inner_text()
    first.click()
    expect(page.locator("h1")).to_contain_text(title[:20])
    # Without the dropdown: Enter submits to the results page.
    page.get_by_role("searchbox", name="Search Northwind").fill("priya")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("search-group-people")).to_contain_text("Priya Raman")


CSV_BAD = ("Team,Objective,Parent team,Parent objective,Key result,Start,Target\n"
           "Product,Make the trial self-serve,Nowhere,Grow revenue,Trials started,0,abc\n"
           ",No team,,,,,\n")


def test_an_import_shows_its_dry_run_then_imports(page, live_server, demo_org):
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/{demo_org}/tree/")
    page.get_by_text("Export and import").click()
    page.get_by_role("link", name="Import OKRs from a CSV file").click()
    expect(page.locator("h1")).to_contain_text("Import OKRs into")
    page.set_input_files("#import-file", files=[{
        "name": "okrs.csv", "mimeType": "text/csv", "buffer": CSV_BAD.encode()}])
    page.get_by_role("button", name="Check the file").click()
    errors = page.get_by_test_id("import-errors")
    expect(errors).to_contain_text("No team is called “Nowhere”")
    expect(errors).to_contain_text("is not a number")
    shot(page, "import-errors.png")

    export = page.request.get(live_server.url + page.get_by_role(
        "link", name="export of a cycle").get_attribute("href"))
    # The demo's own export of this cycle: nothing to change.
    page.set_input_files("#import-file", files=[{
        "name": "export.csv", "mimeType": "text/csv", "buffer": export.body()}])
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_test_id("import-nothing")).to_be_visible()

    good = ("Team,Objective,Local,Key result,Kind,Start,Target,Unit\n"
            "Product,Make the trial self-serve,yes,Trials started without help,numeric,0,400,"
            "trials\n"
            "Product,Make the trial self-serve,yes,Setup guide published,milestone,,,\n")
    page.set_input_files("#import-file", files=[{
        "name": "new.csv", "mimeType": "text/csv", "buffer": good.encode()}])
    page.get_by_role("button", name="Check the file").click()
    report = page.get_by_test_id("import-report")
    expect(report).to_contain_text("Dry run: nothing is written yet")
    expect(page.get_by_test_id("import-actions")).to_contain_text(
        "Create the objective “Make the trial self-serve”")
    shot(page, "import-dry-run.png")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("Imported: 3 changes.")).to_be_visible()
