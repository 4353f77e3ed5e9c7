"""In Chromium, on the demo: Mia (Sales) asks Noah (Marketing) for something. Noah sees it in
"Needs me" on his home page and in the nav count, and declines it in place from his inbox
(the dialog asks first). A second request nobody answers climbs the escalation ladder to Liam
over simulated days; both sides see the steps on the dependency's page."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from dependencies import ladder, services
from dependencies.models import Dependency
from okrs.models import KeyResult
from orgs.models import Membership, Organization, Team

from .helpers import ARTIFACTS, PASSWORD, sign_in

pytestmark = pytest.mark.e2e


def ask(org, mia, need):
    with scope(organization=org):
        down = KeyResult.objects.filter(objective__cycle__status="active",
                                        owner_team__name="Sales").order_by("pk").first()
        up = KeyResult.objects.filter(objective__cycle__status="active",
                                      owner_team__name="Marketing").order_by("pk").first()
        return services.request_dependency(
            membership=mia, downstream=down, upstream=up, need=need,
            needed_by=down.objective.cycle.end_date, fallback="We pitch without them.")


@pytest.mark.django_db(transaction=True)
def test_noah_declines_in_place_and_an_unanswered_request_climbs_to_liam(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        org = Organization.objects.get(slug="northwind")
        mia = Membership.objects.select_related("organization", "user").get(
            organization=org, user__email="mia@northwind.example")
    first = ask(org, mia, "Two customer case studies for the enterprise deck")
    base = f"{live_server.url}/o/northwind"
    ARTIFACTS.mkdir(exist_ok=True)

    sign_in(page, live_server, "noah@northwind.example")
    # Oldest first: the demo's key results to score (the window opened today) come before the
    # request, which the card counts.
    needs = page.get_by_test_id("needs-me")
    expect(needs).to_contain_text("Dependency requests to answer: 1")
    expect(page.get_by_test_id("inbox-count")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "inbox-home-needs-me.png"), full_page=True)

    page.get_by_role("link", name="Needs me").first.click()
    item = page.locator(f"#item-request-{first.pk}")
    expect(item).to_contain_text("Sales needs: Two customer case studies")
    page.screenshot(path=str(ARTIFACTS / "inbox-page.png"), full_page=True)
    item.get_by_placeholder("Reason (to decline)").fill("No writer free until May")
    asked = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    item.get_by_role("button", name="Decline").click()
    done = page.get_by_text("✓ Declined: Two customer case studies for the enterprise deck.")
    expect(done).to_be_visible()
    assert asked == ["Decline this request?"]
    page.screenshot(path=str(ARTIFACTS / "inbox-declined-in-place.png"), full_page=True)
    with scopes_disabled():
        declined = Dependency.objects.get(pk=first.pk)
    assert declined.status == "declined" and declined.response_note == "No writer free until May"

    # Nobody answers the second request: day 3 Noah leads Marketing, day 7 he heads it too
    # (skipped), day 14 Liam, the alignment lead.
    second = ask(org, mia, "A landing page for the SSO launch")
    with scopes_disabled():
        Dependency.objects.filter(pk=second.pk).update(
            created_at=timezone.now() - timedelta(days=15))
    with scope(organization=org):
        reached = ladder.climb(org)
    assert [s.person.email for s in reached if s.dependency_id == second.pk] == [
        "noah@northwind.example", "liam@northwind.example"]
    page.context.clear_cookies()
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{base}/inbox/")
    escalated = page.get_by_test_id("inbox-escalation")
    expect(escalated).to_contain_text("Sales needs Marketing: A landing page for the SSO launch")
    page.screenshot(path=str(ARTIFACTS / "inbox-escalated-to-liam.png"), full_page=True)
    escalated.get_by_role("link", name="Open").first.click()
    ladder_card = page.get_by_test_id("ladder")
    expect(ladder_card).to_contain_text("Day 3, team lead: reached Noah Fischer")
    expect(ladder_card).to_contain_text("Day 7, department head: skipped")
    expect(ladder_card).to_contain_text("Day 14, alignment lead: reached Liam Okafor")
    page.screenshot(path=str(ARTIFACTS / "dependency-ladder.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_ava_sets_the_ladder_days_and_a_team_cadence(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    with scopes_disabled():
        content = Team.objects.select_related("parent").filter(
            organization__slug="northwind", parent__kind="department", kind="team").order_by(
            "name").first()
        marketing = content.parent  # Engineering, above Platform and Web App
    base = f"{live_server.url}/o/northwind"
    ARTIFACTS.mkdir(exist_ok=True)
    # Ava belongs to two organizations: she signs in, then opens Northwind's settings.
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=username]").fill("ava@northwind.example")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/orgs/")
    page.goto(f"{base}/alignment/settings/")
    page.get_by_label("To the department head after (days)").fill("5")
    page.screenshot(path=str(ARTIFACTS / "settings-ladder.png"), full_page=True)
    page.get_by_role("button", name="Save settings").click()
    with scopes_disabled():
        assert Organization.objects.get(slug="northwind").ladder_head_days == 5
    page.goto(f"{base}/console/teams/{marketing.pk}/")
    page.get_by_label("Check-in cadence").select_option(label="Every two weeks")
    page.screenshot(path=str(ARTIFACTS / "team-cadence.png"), full_page=True)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"{marketing.name} saved.")).to_be_visible()
    page.goto(f"{base}/teams/{content.pk}/")
    expect(page.get_by_test_id("cadence")).to_have_text(
        f"Check-ins every two weeks (as {marketing.name})")
