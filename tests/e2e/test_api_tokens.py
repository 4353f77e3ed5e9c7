"""A person makes an API token, uses it, and revokes it; the API's docs render offline under
the strict CSP (the page fixture fails on any console error, a CSP violation included)."""

import io

import pytest
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import expect

from .helpers import ARTIFACTS, field, sign_in


@pytest.mark.django_db(transaction=True)
def test_noah_makes_a_token_calls_the_api_and_revokes_it(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(page, live_server, "noah@northwind.example")
    page.get_by_role("link", name="API", exact=True).click()
    expect(page.get_by_role("heading", name="API tokens", level=1)).to_be_visible()
    field(page, "Name").fill("Jira sync")
    page.get_by_label("Read and write").check()
    page.get_by_role("button", name="Make token").click()
    text = page.get_by_test_id("token-text").inner_text()
    assert text.startswith("okrp_")
    page.screenshot(path=ARTIFACTS / "api-tokens.png", full_page=True)

    api = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {text}"}
    listed = api.get("/api/v1/orgs/northwind/objectives/", {"limit": 5}, **auth)
    assert listed.status_code == 200 and listed.json()["items"]

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").first.click()
    expect(page.get_by_text("is revoked")).to_be_visible()
    assert api.get("/api/v1/orgs/northwind/objectives/", **auth).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_the_api_docs_render_from_our_own_files(page, live_server):
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.get_by_text("OKR Alignment API")).to_be_visible()
    expect(page.get_by_text("/api/v1/orgs/{org_slug}/objectives/").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "api-docs.png")
