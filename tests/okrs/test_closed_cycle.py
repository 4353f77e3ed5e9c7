"""A closed cycle is read-only in the UI: its pages offer no change and say it is closed, naming
the open cycle with a link. The server still refuses a change posted anyway."""

import datetime as dt

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from alignment.models import ReviewComment
from dependencies.models import ObjectiveShare
from okrs.models import CheckIn, Objective
from orgs.models import Cycle

from ..factories import CycleFactory

pytestmark = pytest.mark.django_db

ACTIONS = ["Edit</a>", "Retire</a>", "Check in</a>", "Add key result", "Align an objective to this",
           "Share…", "Add a dependency", "Stop sharing", "Share with a team", "Add objective",
           "Propose for review", "Comment</button>"]


@pytest.fixture
def closed(world_a):
    """world_a's cycle, closed; a newer cycle is the open one."""
    Cycle.objects.with_scopes_disabled().filter(pk=world_a.cycle.pk).update(status="closed")
    world_a.open_cycle = CycleFactory(organization=world_a.org, name="2027 Q2",
                                      start_date=world_a.cycle.end_date + dt.timedelta(days=1),
                                      end_date=world_a.cycle.end_date + dt.timedelta(days=91))
    with scopes_disabled():
        Objective.objects.filter(pk=world_a.objective.pk).update(state="draft")
    return world_a


def offered(page):
    return [a for a in ACTIONS if a in page]


def banner_of(page, world):
    start = page.index('data-testid="closed-cycle"')
    return page[start:page.index("</p>", start)]


def test_an_open_cycle_offers_the_actions(world_a, alice_client):
    with scopes_disabled():
        Objective.objects.filter(pk=world_a.objective.pk).update(state="draft")
    page = alice_client.get(reverse("objective", args=["org-a", world_a.objective.pk])).content
    page = page.decode()
    assert {"Edit</a>", "Retire</a>", "Check in</a>", "Add key result", "Stop sharing",
            "Propose for review"} <= set(offered(page))
    assert 'data-testid="closed-cycle"' not in page


def test_the_objective_page_of_a_closed_cycle_offers_no_change(closed, alice_client):
    page = alice_client.get(reverse("objective", args=["org-a", closed.objective.pk])).content
    page = page.decode()
    assert offered(page) == []
    banner = banner_of(page, closed)
    assert f"{closed.cycle.name} is closed" in banner
    assert "2027 Q2" in banner
    assert f'href="/o/org-a/?cycle={closed.open_cycle.pk}"' in banner


@pytest.mark.parametrize("name,args", [("home", []), ("tree", []), ("team", ["team"])])
def test_cycle_pages_of_a_closed_cycle_say_so_and_offer_no_new_objective(closed, alice_client,
                                                                         name, args):
    url = reverse(name, args=["org-a", *[getattr(closed, a).pk for a in args]])
    page = alice_client.get(url, {"cycle": closed.cycle.pk}).content.decode()
    assert "Add objective" not in page and "objectives/new/" not in page
    assert f"{closed.cycle.name} is closed" in banner_of(page, closed)
    page = alice_client.get(url, {"cycle": closed.open_cycle.pk}).content.decode()
    assert 'data-testid="closed-cycle"' not in page


@pytest.mark.parametrize("name,kind", [("objective_edit", "objective"),
                                       ("objective_retire", "objective"),
                                       ("key_result_edit", "key_result"),
                                       ("check_in", "key_result")])
def test_a_form_of_a_closed_cycle_opened_by_address_goes_back_to_the_objective(
        closed, alice_client, name, kind):
    response = alice_client.get(reverse(name, args=["org-a", getattr(closed, kind).pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("objective", args=["org-a", closed.objective.pk])
    page = alice_client.get(response["Location"]).content.decode()
    assert "is closed" in page


def test_new_objective_in_a_closed_cycle_is_not_offered_by_address(closed, alice_client):
    response = alice_client.get(reverse("objective_new", args=["org-a"]),
                                {"cycle": closed.cycle.pk})
    assert response.status_code == 302


def test_the_server_still_refuses_changes_posted_anyway(closed, alice_client):
    before = CheckIn.objects.with_scopes_disabled().count()
    response = alice_client.post(reverse("check_in", args=["org-a", closed.key_result.pk]),
                                 {"value": "5", "confidence": "on_track", "note": ""})
    assert "This cycle is closed" in response.content.decode()
    assert CheckIn.objects.with_scopes_disabled().count() == before
    # Stop sharing, even confirmed, changes nothing in a closed cycle.
    alice_client.post(reverse("share_remove", args=["org-a", closed.share.pk]),
                      {"confirm": "yes"})
    assert ObjectiveShare.objects.with_scopes_disabled().filter(pk=closed.share.pk).exists()
    # Nor does proposing a draft for review.
    alice_client.post(reverse("review_act", args=["org-a", closed.objective.pk]),
                      {"action": "submit", "text": ""})
    with scopes_disabled():
        assert Objective.objects.get(pk=closed.objective.pk).state == "draft"
        assert not ReviewComment.objects.filter(objective=closed.objective).exists()


def test_a_dependency_of_a_closed_cycle_offers_no_answer(closed, alice_client):
    from dependencies.models import Dependency

    Dependency.objects.with_scopes_disabled().filter(pk=closed.dependency.pk).update(
        status="requested")
    page = alice_client.get(reverse("dependency", args=["org-a", closed.dependency.pk]))
    page = page.content.decode()
    assert "is closed" in banner_of(page, closed)
    assert "Commit</button>" not in page and "Decline</button>" not in page
