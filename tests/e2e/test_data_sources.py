"""In Chromium, on the demo: Liam feeds a key result from another system. He sets up an inbound
webhook from the objective page, copies the secret and the curl example; a signed POST (as the
other system would send it) checks a value in, which the objective page shows. In the admin
console he subscribes a local receiver to check-ins, sees the delivery in the log and
redelivers it."""

import json
import urllib.request

import pytest
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from integrations import signing
from okrs.models import KeyResult
from orgs.models import Organization
from tests.integrations.conftest import LocalServer, allow_private

from .helpers import ARTIFACTS, field, sign_in

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_liam_feeds_a_key_result_by_webhook_and_watches_the_outbound_log(page, live_server,
                                                                           demo_org):
    with scopes_disabled():
        org = Organization.objects.get(slug=demo_org)
    with scope(organization=org):
        kr = (KeyResult.objects.filter(objective__cycle__status="active", kind="numeric",
                                       rollup="").select_related("objective")
              .order_by("pk").first())
    base = f"{live_server.url}/o/{demo_org}"
    ARTIFACTS.mkdir(exist_ok=True)
    receiver = LocalServer()
    receiver.routes["/okr-events"] = (200, {}, b"")
    try:
        sign_in(page, live_server, "liam@northwind.example")
        page.goto(f"{base}/objectives/{kr.objective_id}/")
        page.locator(f"#kr-{kr.pk}").get_by_role(
            "link", name="Feed this key result from another system").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Data source of")
        page.get_by_label("Inbound webhook").check()
        page.get_by_role("button", name="Set up").click()
        secret = page.get_by_test_id("new-secret").locator("code").inner_text()
        expect(page.get_by_test_id("curl-example")).to_contain_text("openssl dgst -sha256")
        page.screenshot(path=str(ARTIFACTS / "data-source-webhook.png"), full_page=True)

        url = page.get_by_test_id("webhook-url").inner_text()
        body = json.dumps({"value": 61, "note": "From the warehouse"}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", **signing.headers(secret, body)})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201
        page.reload()
        expect(page.get_by_test_id("new-secret")).to_have_count(0)  # shown once
        expect(page.get_by_test_id("source-status")).to_contain_text("Last value received")

        page.goto(f"{base}/objectives/{kr.objective_id}/")
        row = page.locator(f"#kr-{kr.pk}")
        expect(row.get_by_test_id("kr-current")).to_have_text("61")
        expect(row.get_by_test_id("kr-source")).to_contain_text("inbound webhook")

        allow_private(org)  # the receiver is on 127.0.0.1
        page.goto(f"{base}/console/webhooks/")
        field(page, "URL").fill(receiver.url("/okr-events"))
        field(page, "What it is for").fill("Data warehouse")
        page.get_by_role("button", name="Add the webhook").click()
        expect(page.get_by_test_id("new-secret")).to_be_visible()
        # A second signed value: its check-in goes to the receiver.
        body = json.dumps({"value": 64}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", **signing.headers(secret, body)})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201
        page.reload()
        deliveries = page.get_by_test_id("webhook-deliveries")
        expect(deliveries).to_contain_text("A check-in is recorded")
        expect(deliveries).to_contain_text("Delivered")
        page.screenshot(path=str(ARTIFACTS / "webhook-log.png"), full_page=True)
        deliveries.get_by_role("button", name="Redeliver").first.click()
        expect(page.get_by_test_id("webhook-attempts")).to_contain_text("HTTP 200")
        assert len([r for r in receiver.received if r["path"] == "/okr-events"]) == 2
        page.screenshot(path=str(ARTIFACTS / "webhook-delivery.png"), full_page=True)
    finally:
        receiver.close()
