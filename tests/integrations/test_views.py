"""The data source page and the webhooks console: who may open them, what they show, and their
query counts at two sizes."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from integrations.models import DataSource, WebhookAttempt, WebhookDelivery, WebhookSubscription
from okrs.models import CheckIn
from tests.factories import KeyResultFactory
from tests.querycount import assert_same_queries, count_queries

from .conftest import allow_private

pytestmark = pytest.mark.django_db


def source_url(w, name="data_source"):
    return reverse(name, args=[w.org.slug, w.key_result.pk])


def test_the_page_sets_up_a_webhook_and_shows_the_secret_once(world_a, alice_client):
    page = alice_client.get(source_url(world_a))
    assert page.status_code == 200 and b"No data source yet" in page.content
    made = alice_client.post(source_url(world_a), {"kind": "webhook", "interval_minutes": 60,
                                                   "is_active": "on"}, follow=True)
    with scopes_disabled():
        source = DataSource.objects.get(key_result=world_a.key_result)
    text = made.content.decode()
    assert made.redirect_chain[-1][0] == source_url(world_a) and source.secret in text
    assert f"/hooks/key-results/{source.token}/" in text and "openssl dgst -sha256" in text
    again = alice_client.get(source_url(world_a)).content.decode()
    assert source.secret not in again and "shown once" in again


def test_a_bad_pull_setup_keeps_the_input_and_says_why(world_a, alice_client):
    response = alice_client.post(source_url(world_a), {
        "kind": "pull", "url": "ftp://bi.example/total", "json_path": "data..total",
        "interval_minutes": 60})
    text = response.content.decode()
    assert response.status_code == 422
    assert "Give a full http:// or https:// address." in text and "empty step" in text
    assert 'value="ftp://bi.example/total"' in text


def test_readers_and_strangers_cannot_open_it(world_a, world_b, bob_client, alice_client):
    assert bob_client.get(source_url(world_a)).status_code == 403
    assert alice_client.get(reverse("data_source", args=[world_a.org.slug,
                                                         world_b.key_result.pk])).status_code == 404


def test_the_csv_dry_run_and_import_through_the_page(world_a, alice_client):
    day = (timezone.localdate() - timedelta(days=4)).isoformat()
    bad = SimpleUploadedFile("v.csv", f"date,value,note\n{day},x,\n".encode())
    response = alice_client.post(source_url(world_a, "data_source_values"),
                                 {"file": bad, "apply": "yes"})
    assert response.status_code == 422
    assert re.search(r"<td>2</td><td>value</td>", response.content.decode())
    good = SimpleUploadedFile("v.csv", f"{day},12,From the export\n".encode())
    checked = alice_client.post(source_url(world_a, "data_source_values"),
                                {"file": good, "apply": "no"})
    assert b"1 line ready to import" in checked.content
    with scopes_disabled():
        assert not CheckIn.objects.filter(source="data_source").exists()
    good.seek(0)
    done = alice_client.post(source_url(world_a, "data_source_values"),
                             {"file": good, "apply": "yes"})
    assert done.status_code == 302
    with scopes_disabled():
        assert CheckIn.objects.filter(source="data_source", note="From the export").exists()


def test_the_objective_page_shows_a_failing_source(world_a, alice_client):
    with scopes_disabled():
        DataSource.objects.create(organization=world_a.org, key_result=world_a.key_result,
                                  kind="pull", token="t1", secret="s", url="http://x.example/",
                                  failures=3, last_error="The address answered HTTP 503.",
                                  last_error_at=timezone.now())
    page = alice_client.get(reverse("objective", args=[world_a.org.slug,
                                                       world_a.objective.pk]))
    assert "Failing 3 times in a row" in page.content.decode()
    assert "The address answered HTTP 503." in page.content.decode()


def test_the_data_source_page_does_not_grow_with_history(world_a, alice_client):
    url = source_url(world_a)
    small = count_queries(lambda: alice_client.get(url))
    with scopes_disabled():
        for _ in range(30):
            KeyResultFactory(objective=world_a.objective)
    large = count_queries(lambda: alice_client.get(url))
    assert_same_queries(small, large)


def test_the_webhooks_console_is_for_admins_and_alignment_leads(world_a, bob_client,
                                                                 alice_client):
    assert bob_client.get(reverse("webhooks", args=[world_a.org.slug])).status_code == 403
    page = alice_client.get(reverse("webhooks", args=[world_a.org.slug]))
    assert page.status_code == 200 and b"How to check that a post comes from us" in page.content


def test_adding_a_webhook_shows_its_secret_once(world_a, alice_client):
    allow_private(world_a.org)
    response = alice_client.post(reverse("webhooks", args=[world_a.org.slug]), {
        "url": "http://127.0.0.1:9/receiver", "events": ["check_in.created", "cycle.closed"],
        "is_active": "on"}, follow=True)
    with scopes_disabled():
        row = WebhookSubscription.objects.get(url="http://127.0.0.1:9/receiver")
    assert response.redirect_chain[-1][0] == reverse("webhook", args=[world_a.org.slug, row.pk])
    assert row.secret in response.content.decode()
    assert row.events == ["check_in.created", "cycle.closed"]
    page = alice_client.get(reverse("webhook", args=[world_a.org.slug, row.pk]))
    assert row.secret not in page.content.decode()


def test_a_private_webhook_address_is_refused_with_a_form_error(world_a, alice_client):
    response = alice_client.post(reverse("webhooks", args=[world_a.org.slug]), {
        "url": "http://127.0.0.1:9/receiver", "events": ["check_in.created"]})
    assert response.status_code == 422 and b"private network" in response.content


def test_only_an_admin_allows_private_addresses(world_a, alice_client):
    url = reverse("integration_settings", args=[world_a.org.slug])
    assert alice_client.post(url, {"allow_private_addresses": "on"}).status_code == 302
    from integrations.sources import allows_private

    assert allows_private(world_a.org)
    alice_client.post(url, {})
    assert not allows_private(world_a.org)


def test_the_redeliver_button_sends_again(world_a, alice_client, server,
                                          django_capture_on_commit_callbacks):
    allow_private(world_a.org)
    server.routes["/hook"] = (200, {}, b"")
    with scopes_disabled():
        WebhookSubscription.objects.filter(pk=world_a.webhook.pk).update(
            url=server.url("/hook"))
    url = reverse("webhook_redeliver", args=[world_a.org.slug, world_a.webhook_delivery.pk])
    assert alice_client.get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.post(url).status_code == 302
    assert len(server.received) == 1
    page = alice_client.get(reverse("webhook_delivery", args=[world_a.org.slug,
                                                              world_a.webhook_delivery.pk]))
    assert b"HTTP 200" in page.content


def test_the_webhook_page_does_not_grow_with_its_deliveries(world_a, alice_client):
    url = reverse("webhook", args=[world_a.org.slug, world_a.webhook.pk])

    def add(n):
        with scopes_disabled():
            for _ in range(n):
                d = WebhookDelivery.objects.create(
                    organization=world_a.org, subscription=world_a.webhook,
                    event_type="check_in.created", body="{}")
                WebhookAttempt.objects.create(organization=world_a.org, delivery=d,
                                              status_code=500, error="HTTP 500")

    add(2)
    small = count_queries(lambda: alice_client.get(url))
    add(60)
    large = count_queries(lambda: alice_client.get(url))
    assert_same_queries(small, large)
    assert large[0].content.count(b">Redeliver</button>") == 20  # one page
    list_url = reverse("webhooks", args=[world_a.org.slug])
    small = count_queries(lambda: alice_client.get(list_url))
    with scopes_disabled():
        for i in range(30):
            WebhookSubscription.objects.create(organization=world_a.org, secret="s",
                                               url=f"https://h{i}.example/", events=[])
    large = count_queries(lambda: alice_client.get(list_url))
    assert_same_queries(small, large)
