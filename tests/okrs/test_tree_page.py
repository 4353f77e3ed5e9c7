"""The alignment tree's first screen opens one level only, whatever the organization's size:
the company objectives, each with how many are aligned below and its health. Deeper levels
load one branch at a time (htmx, or a plain link without JavaScript)."""

import pytest
from django.urls import reverse

from okrs.models import Objective
from okrs.selectors import TREE_BRANCH, TREE_OTHERS
from tests.factories import KeyResultFactory, ObjectiveFactory, TeamFactory
from tests.querycount import assert_same_queries, count_queries, within

pytestmark = pytest.mark.django_db


def url(world, name, *args):
    return reverse(name, args=[world.org.slug, *args])



def department_objectives(world, n, start=0):
    """n department objectives under the company goal, each with a key result."""
    for i in range(start, start + n):
        team = TeamFactory(organization=world.org, name=f"Dept {i:04}", parent=world.company)
        o = ObjectiveFactory(organization=world.org, cycle=world.cycle, team=team,
                             parent=world.company_objective, title=f"Dept goal {i:04}")
        KeyResultFactory(objective=o)


def local_objectives(world, n, start=0):
    for i in range(start, start + n):
        ObjectiveFactory(organization=world.org, cycle=world.cycle, team=world.team,
                         is_local=True, title=f"Local goal {i:04}")


def get(client, world, **params):
    return client.get(url(world, "tree"), params)


def test_the_tree_page_does_not_grow_with_the_departments_below(world_a, alice_client):
    department_objectives(world_a, 4)  # 5 with the team goal
    small = count_queries(lambda: get(alice_client, world_a))
    department_objectives(world_a, 55, start=4)  # 60
    large = count_queries(lambda: get(alice_client, world_a))
    assert_same_queries(small, large)
    html = large[0].content.decode()
    within(small[0].content, large[0].content)
    assert "60 aligned" in html and "Dept goal" not in html
    assert "Org A company goal" in html and "Org A second company goal" in html


def test_the_other_roots_come_a_page_at_a_time(world_a, alice_client):
    local_objectives(world_a, TREE_OTHERS + 5)
    small = count_queries(lambda: get(alice_client, world_a))
    local_objectives(world_a, 60, start=TREE_OTHERS + 5)
    large = count_queries(lambda: get(alice_client, world_a))
    assert_same_queries(small, large)
    within(small[0].content, large[0].content)
    html = large[0].content.decode()
    total = TREE_OTHERS + 65
    assert f"Not under a company objective ({total})" in html
    assert html.count("Local goal") == TREE_OTHERS
    assert "Local goal 0000" in html and f"Local goal {TREE_OTHERS:04}" not in html
    assert "page=2" in html
    last = get(alice_client, world_a, page=total // TREE_OTHERS + 1).content.decode()
    assert f"Local goal {total - 1:04}" in last and "Local goal 0000" not in last
    assert "Show more" not in last


def test_without_javascript_a_branch_opens_by_a_plain_link(world_a, alice_client):
    html = get(alice_client, world_a).content.decode()
    branch = f"{url(world_a, 'tree')}?branch={world_a.company_objective.pk}"
    assert f'href="{branch}"' in html
    page = alice_client.get(branch).content.decode()
    assert "Org A team goal" in page and "<html" in page
    assert url(world_a, "objective", world_a.company_objective.pk) in page  # where we are
    # Only this branch: not the other company objective.
    assert "Org A second company goal" not in page


def test_a_branch_of_another_organization_is_not_found(world_a, world_b, alice_client):
    response = get(alice_client, world_a, branch=world_b.company_objective.pk)
    assert response.status_code == 404


def test_a_branch_with_no_live_children_says_so(world_a, alice_client):
    Objective.objects.with_scopes_disabled().filter(pk=world_a.objective.pk).update(
        state=Objective.State.RETIRED)
    html = get(alice_client, world_a, branch=world_a.company_objective.pk).content.decode()
    assert "No aligned objectives." in html


def test_the_other_roots_total_counts_objectives_not_their_children(world_a, alice_client):
    # Retiring the company goal makes the team goal a root; its children must not inflate
    # the count.
    for i in range(3):
        ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=world_a.team,
                         parent=world_a.objective, title=f"Child {i}")
    alice_client.post(url(world_a, "objective_retire", world_a.company_objective.pk),
                      {"confirm": "yes"})
    html = get(alice_client, world_a).content.decode()
    assert "Not under a company objective (1)" in html and "3 aligned" in html


def test_a_large_branch_opens_a_page_at_a_time(world_a, alice_client):
    """A company objective with many aligned objectives: the branch shows TREE_BRANCH of them
    and a "Show more" that loads the next page in place (htmx) or as a page (without JS); the
    branch's size and queries do not grow with the objectives below it."""
    children = url(world_a, "tree_children", world_a.company_objective.pk)
    department_objectives(world_a, TREE_BRANCH)  # + the team goal: one page and one more
    small = count_queries(lambda: alice_client.get(children, HTTP_HX_REQUEST="true"))
    department_objectives(world_a, 3, start=TREE_BRANCH)  # 29 in all
    large = count_queries(lambda: alice_client.get(children, HTTP_HX_REQUEST="true"))
    assert_same_queries(small, large)
    within(small[0].content, large[0].content)
    first = large[0].content.decode()
    assert first.count('class="tree-node"') == TREE_BRANCH
    assert "Show more aligned objectives" in first and f"{children}?page=2" in first
    second = alice_client.get(children, {"page": 2}, HTTP_HX_REQUEST="true").content.decode()
    assert second.count('class="tree-node"') == 4
    assert "Show more" not in second and "<ul" not in second  # rows for the same list
    # The pages together hold every aligned objective once.
    titles = {f"Dept goal {i:04}" for i in range(TREE_BRANCH + 3)}
    assert all((t in first) != (t in second) for t in titles)
    # Without JavaScript: the branch page pages the same way.
    page2 = get(alice_client, world_a, branch=world_a.company_objective.pk, page=2)
    html = page2.content.decode()
    assert "<html" in html and html.count('class="tree-node"') == 4
