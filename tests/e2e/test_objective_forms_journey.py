"""The objective page's forms that load when opened, in Chromium on the demo: the share form
(with its team picker) and the add-a-key-result form arrive on the first click and save."""

import pytest
from playwright.sync_api import expect

from .helpers import field, pick, sign_in
from .test_corrections_journey import objective_url

pytestmark = pytest.mark.e2e


def test_the_share_and_add_forms_load_when_opened_and_save(page, live_server, demo_org):
    sign_in(page, live_server, "mia@northwind.example")
    page.goto(objective_url(live_server, "Win more enterprise customers"))
    network = page.locator("#network")
    expect(network.locator("form[action$='/shares/']")).to_have_count(0)  # not on the page

    network.locator("summary", has_text="Share with a team").click()
    form = network.locator("#share-form form")
    pick(form, "Team", "Mark", "Marketing")
    form.get_by_role("button", name="Share").click()
    expect(page.locator("#network")).to_contain_text("with Marketing")

    page.locator("summary", has_text="Add key result").click()
    add = page.locator("#kr-new-form")
    field(add, "Title").fill("Sign two reference customers")
    field(add, "Start value").fill("0")
    field(add, "Target value").fill("2")
    add.get_by_role("button", name="Add key result").click()
    expect(page.locator("#key-results li.kr").filter(
        has_text="Sign two reference customers")).to_have_count(1)
