"""In Chromium, on the demo: a member opens the closed quarter's review from its banner, opens a
department's teams, searches the lessons, prints it without the navigation and downloads it."""

import io
import re

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from okrs.models import Objective, ObjectiveClose
from orgs.models import Cycle

from .helpers import ARTIFACTS, sign_in

pytestmark = pytest.mark.e2e


def score_the_closed_quarter():
    """Scores and close forms on the demo's closed cycle, whatever the demo seeds itself."""
    with scopes_disabled():
        closed = Cycle.objects.get(organization__slug="northwind", status="closed")
        objectives = list(Objective.objects.filter(cycle=closed).exclude(
            state__in=["draft", "retired"]).select_related("team").order_by("pk"))
        ObjectiveClose.objects.filter(objective__in=objectives).delete()
        for i, o in enumerate(objectives):
            o.score = [1.0, 0.7, 0.4, 0.9][i % 4]
            o.commitment = "aspirational" if i % 3 == 0 else "committed"
            o.save(update_fields=["score", "commitment"])
            ObjectiveClose.objects.create(
                organization=o.organization, objective=o,
                outcome=["accomplished", "partly", "missed", "partly"][i % 4],
                learned=f"Lesson {i}: " + ("pricing pages convert" if i == 1 else
                                           "weekly check-ins surfaced risks early"),
                differently="Agree on the measure before the quarter starts.",
                next_step="drop", closed_at=timezone.now())
    return closed, objectives


@pytest.mark.django_db(transaction=True)
def test_a_member_reads_prints_and_downloads_the_cycle_review(page, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    closed, objectives = score_the_closed_quarter()
    sign_in(page, live_server, "lucas@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/?cycle={closed.pk}")
    page.get_by_test_id("closed-cycle").get_by_role("link", name="Read the cycle review").click()
    expect(page).to_have_url(re.compile(rf"/o/northwind/cycles/{closed.pk}/review/$"))
    expect(page.get_by_role("heading", name=f"Review of {closed.name}")).to_be_visible()
    expect(page.get_by_test_id("scored")).to_have_text(f"{len(objectives)} of {len(objectives)}")
    expect(page.get_by_test_id("diagnostic")).to_be_visible()

    # A department opens its teams in place (htmx), and the address says which.
    scores = page.locator("#scores")
    department = scores.locator("tbody tr td a").first
    name = department.inner_text()
    department.click()
    expect(page.locator("#teams h3")).to_have_text(f"Teams of {name}")
    expect(page).to_have_url(re.compile(r"department=\d+"))

    # Searching the lessons swaps the list only.
    search = page.get_by_label("Search the lessons")
    search.press_sequentially("pricing", delay=60)  # results follow the typing
    lessons = page.locator("#lessons")
    expect(lessons.get_by_test_id("lessons-count")).to_have_text("1 found for “pricing”")
    expect(search).to_be_focused()  # the box is not swapped away while typing
    page.get_by_role("button", name="Search").click()
    expect(lessons.get_by_test_id("lessons-count")).to_have_text("1 found for “pricing”")
    expect(lessons).to_contain_text("pricing pages convert")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "cycle-review.png", full_page=True)

    page.emulate_media(media="print")
    expect(page.locator("header.topbar")).to_be_hidden()
    expect(page.get_by_role("link", name="Download Markdown")).to_be_hidden()
    page.screenshot(path=ARTIFACTS / "cycle-review-print.png", full_page=True)
    page.emulate_media(media="screen")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download Markdown").click()
    download = info.value
    assert download.suggested_filename.endswith(".md")
    text = open(download.path(), encoding="utf-8").read()
    assert text.startswith(f"# Cycle review: {closed.name}")
    assert "pricing pages convert" in text
