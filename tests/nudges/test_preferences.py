"""The preferences page: each event group by channel, quiet hours, a time zone of one's own,
and the weekly cap on reminder emails said on the page."""

from datetime import time

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from nudges import services
from nudges.models import Preference
from tests.querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def url(org):
    return f"/o/{org.slug}/preferences/"


def test_the_page_shows_the_grid_and_says_the_cap(world_a, alice_client, settings):
    settings.NOTIFY_REMINDER_WEEKLY_CAP = 4
    html = alice_client.get(url(world_a.org)).content.decode()
    for text in ("Requests to me", "Reviews", "Risk alerts", "Reminders", "In the app",
                 "Email", "Team chat", "Quiet hours", "My time zone"):
        assert text in html
    assert "Reminder emails: at most 4 a week. Requests, reviews and risk alerts are never " \
           "capped." in html
    assert "Emails that fall in your quiet hours wait until they end" in html


def test_saving_the_choices_quiet_hours_and_a_time_zone(world_a, alice, alice_client):
    response = alice_client.post(url(world_a.org), {
        "weekly_digest": "on", "requests_app": "on", "requests_email": "on",
        "reviews_app": "on", "reminders_chat": "on", "quiet_from": "21:30",
        "quiet_until": "07:00", "timezone": "Asia/Tokyo"})
    assert response.status_code == 302
    with scopes_disabled():
        pref = Preference.objects.get(organization=world_a.org, user=alice)
    assert pref.requests_email and not pref.reviews_email and not pref.immediate_alerts
    assert not pref.requests_chat and pref.reminders_chat and not pref.reminders_email
    assert (pref.quiet_from, pref.quiet_until) == (time(21, 30), time(7))
    alice.refresh_from_db()
    assert alice.timezone == "Asia/Tokyo"
    html = alice_client.get(url(world_a.org)).content.decode()
    assert 'value="21:30"' in html and "Now used: Asia/Tokyo" in html


@pytest.mark.parametrize("data, error", [
    ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
    ({"quiet_from": "22:00"}, "Give both ends of the quiet hours, or neither."),
    ({"quiet_from": "25:00", "quiet_until": "07:00"}, "Enter a valid time."),
])
def test_bad_input_is_a_form_error_and_nothing_is_lost(world_a, alice, alice_client, data,
                                                       error):
    response = alice_client.post(url(world_a.org), {"requests_chat": "on", **data})
    html = response.content.decode()
    assert response.status_code == 200 and error in html
    assert 'name="requests_chat" checked' in html.replace(' id="id_requests_chat"', "")
    with scopes_disabled():
        assert not Preference.objects.filter(user=alice).exists()
    alice.refresh_from_db()
    assert alice.timezone == ""


def test_the_page_costs_the_same_queries_for_a_new_and_a_saved_person(world_a, alice,
                                                                    alice_client):
    small = count_queries(lambda: alice_client.get(url(world_a.org)))
    with scopes_disabled():
        Preference.objects.create(organization=world_a.org, user=alice, quiet_from=time(20),
                                  quiet_until=time(8))
    large = count_queries(lambda: alice_client.get(url(world_a.org)))
    assert_same_queries(small, large)


def test_the_notification_emails_unsubscribe_link_turns_off_their_emails_only(world_a, alice,
                                                                              client):
    token = services.unsubscribe_token(world_a.org, alice, "events")
    page = client.get(reverse("unsubscribe", args=[token])).content.decode()
    assert "notification emails" in page
    client.post(reverse("unsubscribe", args=[token]))
    with scopes_disabled():
        pref = Preference.objects.get(organization=world_a.org, user=alice)
    assert not (pref.requests_email or pref.reviews_email or pref.reminders_email)
    assert pref.weekly_digest and pref.immediate_alerts and pref.requests_app
