"""In Chromium, on the demo: Ethan (Engineering) tries to add his "Cut JS payload" into the
company's ARR key result. Adding up MB into $M is refused; asking to count only its health
goes to Ava, the company's lead, who declines. The ARR number never moves."""

import io
import re

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from okrs.charts import plain_number
from okrs.models import KeyResult

from .helpers import ARTIFACTS, PASSWORD, field, pick, sign_in

pytestmark = pytest.mark.e2e

ARR = "Grow ARR from $8.4M to $12M"
PAYLOAD = "Cut JS payload from 1.8 MB to 0.9 MB"


def arr_value(arr):
    with scopes_disabled():
        return KeyResult.objects.get(pk=arr.pk).current_value


@pytest.mark.django_db(transaction=True)
def test_ethan_asks_to_feed_the_arr_key_result_and_ava_declines(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        arr = KeyResult.objects.select_related("objective").get(
            organization__slug="northwind", objective__cycle__status="active", title=ARR)
        payload = KeyResult.objects.get(organization__slug="northwind",
                                        objective__cycle__status="active", title=PAYLOAD)
    shown = plain_number(arr_value(arr))
    base = f"{live_server.url}/o/northwind"
    ARTIFACTS.mkdir(exist_ok=True)

    def arr_on_screen():
        page.goto(f"{base}/objectives/{arr.objective_id}/")
        expect(page.locator(f"#kr-{arr.pk} [data-testid=kr-current]")).to_have_text(shown)

    # Ethan opens his KR's "Share…" page and asks to add it up into the company's ARR.
    sign_in(page, live_server, "ethan@northwind.example")
    page.goto(f"{base}/objectives/{payload.objective_id}/")
    page.locator(f"#kr-{payload.pk}").get_by_role("link", name="Share…").click()
    expect(page.get_by_role("heading", name="Share a key result")).to_be_visible()
    pick(page, "Contributes to", "grow arr", f"Northwind Cloud: {ARR}")
    field(page, "The shared key result's value").select_option(label="Sum of contributors")
    page.get_by_role("button", name="Ask to contribute").click()
    # MB cannot add up into $M: refused, with both units named.
    error = page.get_by_text(re.compile(r"The units do not match"))
    expect(error).to_be_visible()
    expect(error).to_contain_text("counts MB")
    expect(error).to_contain_text("counts $M")
    page.screenshot(path=str(ARTIFACTS / "rollup-units-refused.png"), full_page=True)
    assert plain_number(arr_value(arr)) == shown

    # Counting only its health is a request: nothing changes until the owners answer.
    field(page, "The shared key result's value").select_option(label="Keep its own check-ins")
    page.get_by_role("button", name="Ask to contribute").click()
    expect(page).to_have_url(re.compile(rf"/objectives/{payload.objective_id}/"))
    expect(page.get_by_text("Nothing changes until they do.")).to_be_visible()
    network = page.locator("#network")
    expect(network).to_contain_text("Waiting for an answer")
    expect(network).to_contain_text(f"asked to feed {ARR}")
    page.screenshot(path=str(ARTIFACTS / "rollup-request-sent.png"), full_page=True)
    arr_on_screen()

    # Ava, who leads the company team, is told; she opens the alert and declines.
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=username]").fill("ava@northwind.example")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()  # two
    page.goto(f"{base}/alerts/")
    alert = page.locator(".alert-list li", has_text="Web App asks to count")
    expect(alert).to_contain_text("Nothing changes until you answer")
    alert.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/objectives/{arr.objective_id}/#network$"))
    request = page.locator("[data-testid=contribution-request]")
    expect(request).to_contain_text(f"Web App asks to count {PAYLOAD} in “{ARR}”")
    expect(request).to_contain_text("only its health would count")
    expect(page.locator(f"#kr-{arr.pk} [data-testid=kr-current]")).to_have_text(shown)
    page.screenshot(path=str(ARTIFACTS / "rollup-request-to-answer.png"), full_page=True)
    field(request, "Note (optional)").fill("ARR counts booked revenue only.")
    request.get_by_role("button", name="Decline").click()

    expect(page.get_by_text(re.compile(r"Declined: .* does not feed"))).to_be_visible()
    expect(page.locator("[data-testid=contribution-request]")).to_have_count(0)
    expect(page.locator(f"#kr-{arr.pk} [data-testid=kr-current]")).to_have_text(shown)
    expect(page.locator(f"#kr-{arr.pk} [data-testid=rollup]")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "rollup-declined.png"), full_page=True)
    with scopes_disabled():
        arr_now = KeyResult.objects.get(pk=arr.pk)
        assert (plain_number(arr_now.current_value), arr_now.rollup) == (shown, "")
        assert KeyResult.objects.get(pk=payload.pk).feeds_id is None

    # Ethan sees the answer, with Ava's reason, where he asked.
    page.context.clear_cookies()
    sign_in(page, live_server, "ethan@northwind.example")
    page.goto(f"{base}/key-results/{payload.pk}/contributes-to/")
    expect(page.locator("[data-testid=last-answer]")).to_contain_text(
        "was declined by Ava Thompson")
    expect(page.locator("[data-testid=last-answer]")).to_contain_text(
        "ARR counts booked revenue only.")

