"""In Chromium, on the demo two weeks from its cycle's end: Sales' lead scores two key results
(one override, with a reason), fills in the close form and carries the objective over; the
alignment lead closes the cycle anyway and reads final scores."""

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command
from django.urls import Resolver404, resolve
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from okrs import scoring
from okrs.models import KeyResult, Objective
from orgs.models import Cycle, Membership

from .helpers import ARTIFACTS, field, sign_in

pytestmark = pytest.mark.e2e
SALES = "Win more enterprise customers"
DEALS = "Close 12 enterprise deals"
SIZE = "Raise average deal size from $40k to $55k"
SSO = "SSO available to enterprise prospects"


def two_weeks_from_the_end():
    """The demo's current cycle ends in ten days; the next one starts then. Engineering's
    lead has scored the KR it owns under Sales' objective."""
    today = timezone.localdate()
    with scopes_disabled():
        current = Cycle.objects.get(organization__slug="northwind", status="active",
                                    objectives__title=SALES)
        following = Cycle.objects.filter(organization__slug="northwind",
                                         start_date__gte=current.end_date).exclude(
            pk=current.pk).order_by("start_date").first()
        Cycle.objects.filter(pk=current.pk).update(start_date=today - dt.timedelta(days=80),
                                                   end_date=today + dt.timedelta(days=10))
        Cycle.objects.filter(pk=following.pk).update(start_date=today + dt.timedelta(days=10),
                                                     end_date=today + dt.timedelta(days=100))
        current.refresh_from_db()
        following.refresh_from_db()
        objective = Objective.objects.select_related("cycle").get(cycle=current, title=SALES)
        ethan = Membership.objects.get(organization=current.organization,
                                       user__email="ethan@northwind.example")
        sso = KeyResult.objects.get(objective=objective, title=SSO)
        deals = KeyResult.objects.get(objective=objective, title=DEALS)
    with scope(organization=current.organization):
        scoring.score_key_result(membership=ethan, key_result=sso, score="1",
                                 reason="Shipped to every enterprise prospect in week 9.")
    return current, following, objective, scoring.propose(deals)


@pytest.mark.django_db(transaction=True)
def test_a_team_lead_scores_closes_and_carries_over_and_the_alignment_lead_closes(page,
                                                                                 live_server):
    call_command("seed_demo", stdout=io.StringIO())
    current, following, objective, proposal = two_weeks_from_the_end()
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"{live_server.url}/o/northwind"

    # Mia leads Sales: her team page asks her to score.
    sign_in(page, live_server, "mia@northwind.example")
    page.goto(f"{base}/teams/{objective.team_id}/")
    prompt = page.get_by_test_id("team-scoring")
    expect(prompt).to_contain_text("2 key results to score")
    page.screenshot(path=ARTIFACTS / "team-scoring-prompt.png", full_page=False)
    prompt.get_by_role("link", name=SALES).click()
    expect(page.get_by_role("heading", name="Score your key results")).to_be_visible()

    # The deals KR keeps its proposal; the deal size is overridden, first without a reason.
    expect(field(page, f"Score for “{DEALS}”")).to_have_value(f"{proposal}")
    field(page, f"Score for “{SIZE}”").fill("0.5")
    page.get_by_role("button", name="Save scores").click()
    expect(page.get_by_role("alert").filter(has_text="Say why the score differs")).to_be_visible()
    expect(field(page, f"Score for “{SIZE}”")).to_have_value("0.5")
    page.screenshot(path=ARTIFACTS / "score-form-reason-needed.png", full_page=True)
    page.locator("fieldset", has_text=SIZE).get_by_label("Reason").fill(
        "Two large deals moved to next quarter.")
    page.get_by_role("button", name="Save scores").click()
    expect(page.get_by_text("Scores saved.")).to_be_visible()
    expect(page.get_by_text("“Two large deals moved to next quarter.”")).to_be_visible()
    expect(page.get_by_test_id("objective-band")).to_contain_text("Below 1.0 on a commitment")

    # The close form, then carry-over into the next cycle.
    page.get_by_role("link", name="Fill in the close form").click()
    page.get_by_label("Partly accomplished").check()
    field(page, "What we learned").fill("Enterprise buyers need SSO before the pilot.")
    field(page, "What we would do differently").fill("Start security reviews in week one.")
    page.get_by_label("Carry over to the next cycle").check()
    page.get_by_role("button", name="Save the close form").click()
    expect(page.get_by_role("heading", name=f"Carry “{SALES}” over")).to_be_visible()
    page.get_by_role("button", name=f"Carry over to {following.name}").click()
    expect(page.get_by_text(f"Carried over to {following.name} as a draft.")).to_be_visible()
    history = page.get_by_test_id("cycle-history")
    expect(history).to_contain_text(current.name)
    expect(history).to_contain_text(f"{following.name}: this objective")
    page.screenshot(path=ARTIFACTS / "carried-over-draft.png", full_page=True)

    # Liam, the alignment lead, closes the cycle from the console: two KRs of other objectives
    # are still owed, so he closes anyway, after the dialog.
    page.context.clear_cookies()
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{base}/console/cycles/")
    page.get_by_role("row", name=re.compile(re.escape(current.name))).get_by_role(
        "link", name="Close…").click()
    expect(page.get_by_test_id("closing-outstanding")).to_contain_text("not scored")
    page.screenshot(path=ARTIFACTS / "close-cycle-console.png", full_page=True)
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Close anyway").click()
    expect(page.get_by_text(f"{current.name} is closed.")).to_be_visible()
    assert asked and asked[0].startswith(f"Close {current.name} anyway?")

    page.goto(f"{base}/objectives/{objective.pk}/")
    expect(page.get_by_test_id("closed-cycle")).to_be_visible()
    score = page.get_by_test_id("final-score").first
    expect(score).to_contain_text("0.")
    expect(page.get_by_test_id("objective-health")).to_have_count(0)
    expect(page.get_by_role("link", name="Score your key results")).to_have_count(0)
    expect(page.get_by_test_id("close-form-answers")).to_contain_text("Partly accomplished")
    page.screenshot(path=ARTIFACTS / "closed-cycle-final-scores.png", full_page=True)
    with scopes_disabled():
        stored = Objective.objects.get(pk=objective.pk)
        assert stored.score is not None
        assert Cycle.objects.get(pk=current.pk).closed_by.email == "liam@northwind.example"
    expect(score).to_contain_text(f"{stored.score:.2f}")

    # The cycle review page, where part v's branch provides it.
    review = f"/o/northwind/cycles/{current.pk}/review/"
    try:
        resolve(review)
    except Resolver404:
        return
    page.goto(f"{live_server.url}{review}")
    expect(page.get_by_role("heading").first).to_be_visible()
