"""Mia asks Noah for something: Noah is told in the app at once and by one email after the
bundling window; he declines; Mia is told. Then the notification settings and a chat channel,
as their owners see them."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from .helpers import ARTIFACTS, sign_in

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_a_request_reaches_noah_at_once_and_by_one_email_and_his_decline_reaches_mia(
        page, live_server, demo_org, settings):
    from django_scopes import scope, scopes_disabled

    from dependencies import services
    from nudges import events, outbox
    from nudges.models import OutboundEmail
    from okrs.models import KeyResult, Objective
    from orgs.models import Membership

    with scopes_disabled():
        mia_m = Membership.objects.select_related("organization", "user").get(
            user__email="mia@northwind.example")
        deals = KeyResult.objects.filter(objective__team__name="Sales",
                                         objective__cycle__status="active").first()
        demand = Objective.objects.get(title="Fill the pipeline with qualified demand")
        # What the demo's seeding raised has gone out already (the sweep ran since).
        events.flush_due(timezone.now() + timedelta(minutes=11))
    before = len(mail.outbox)
    with scope(organization=mia_m.organization):
        dep = services.request_dependency(
            membership=mia_m, downstream=deals, upstream=demand,
            need="Forty enterprise leads from the March campaign",
            needed_by=deals.objective.cycle.end_date, fallback="We work the existing list")
    title = "Sales asks Marketing: Forty enterprise leads from the March campaign"

    # Noah sees it in the app at once; no email yet, the window is open.
    sign_in(page, live_server, "noah@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/alerts/")
    expect(page.get_by_role("link", name=title)).to_be_visible()
    expect(page.get_by_text("by Mia Chen")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "notifications-noah.png", full_page=False)
    assert not [m for m in mail.outbox[before:] if m.to == ["noah@northwind.example"]]

    # After the window the sweep writes one email, and the outbox sends it.
    with scopes_disabled():
        events.flush_due(timezone.now() + timedelta(minutes=11))
        for pk in OutboundEmail.objects.filter(kind="events", status="pending").values_list(
                "pk", flat=True):
            outbox.deliver(pk)
    [email] = [m for m in mail.outbox[before:] if m.to == ["noah@northwind.example"]]
    assert email.subject == f"Northwind Cloud: {title}"
    assert f"/o/northwind/dependencies/{dep.pk}/" in email.body

    # He declines, from the link.
    page.get_by_role("link", name=title).click()
    page.get_by_label("Why can't your team commit?").fill("The March campaign is for SMB.")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Decline").click()
    expect(page.get_by_test_id("dependency-status")).to_have_text("Declined")
    page.get_by_role("button", name="Sign out").click()

    # Mia is told, with his reason.
    sign_in(page, live_server, "mia@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/alerts/")
    declined = "Marketing declined what Sales needs: Forty enterprise leads from the March campaign"
    expect(page.get_by_role("link", name=declined)).to_be_visible()
    expect(page.get_by_text("The March campaign is for SMB.")).to_be_visible()


@pytest.mark.django_db(transaction=True)
def test_noah_sets_quiet_hours_and_an_admin_adds_a_chat_channel(page, live_server, demo_org,
                                                                settings):
    settings.CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    sign_in(page, live_server, "noah@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/preferences/")
    expect(page.get_by_test_id("reminder-cap")).to_contain_text("at most 3 a week")
    page.get_by_label("Reminders: Email").uncheck()
    page.get_by_label("Quiet from").fill("20:00")
    page.get_by_label("Quiet until").fill("08:00")
    page.get_by_label("My time zone").fill("Europe/Lisbon")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Preferences saved.")).to_be_visible()
    expect(page.get_by_label("Reminders: Email")).not_to_be_checked()
    page.screenshot(path=ARTIFACTS / "notification-settings.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/console/chat/")
    expect(page.get_by_text("No chat channel yet.")).to_be_visible()
    page.get_by_label("Chat tool").select_option(label="Slack")
    page.get_by_label("Incoming webhook URL").fill("http://127.0.0.1:9/services/T000/B000")
    page.get_by_role("button", name="Add the channel").click()
    expect(page.get_by_text("Channel added.")).to_be_visible()
    page.get_by_role("button", name="Send a test message").click()
    expect(page.get_by_text("The test message did not arrive")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "chat-channel.png", full_page=True)
