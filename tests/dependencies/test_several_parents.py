"""Several parents per objective, and a key result aligned to another team's objective: stored
with their shares, checked for loops through every link, and followed by the roll-up, the
propagation, the matrix, the over-cascading rule, the tree and the pages."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from alignment import rules
from alignment.views_cascade import matrix_data
from dependencies import network
from okrs import services
from okrs.models import KeyResult, Objective, ObjectiveParent
from orgs.models import Cycle
from tests.factories import (
    CycleFactory,
    DependencyFactory,
    KeyResultFactory,
    ObjectiveFactory,
)

from ..querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def fresh(obj):
    with scope(organization=obj.organization):
        return type(obj).objects.get(pk=obj.pk)


def run(r, capture):
    with scope(organization=r.org), capture(execute=True):
        return network.run(r.cycle)


def set_extra(r, objective, extras, membership=None):
    """Save ``objective`` as it is, with ``extras`` ([(parent, share or None)])."""
    o = fresh(objective)
    with scope(organization=r.org):
        return services.update_objective(
            membership=membership or r.world.admin, objective=o, version=o.version,
            title=o.title, why=o.why, team=o.team, parent=o.parent, is_local=o.is_local,
            state=o.state, extra_parents=extras)


def causes(objective):
    """The titles on its stored paths back to the root causes."""
    return {step["title"] for path in objective.risk_causes for step in path if step}


def links(objective):
    with scopes_disabled():
        return {p: s for p, s in ObjectiveParent.objects.filter(objective=objective)
                .values_list("parent_id", "share")}


@pytest.fixture
def two(revenue):
    """A second company objective, "Delight customers", that Sales' objective also serves."""
    r = revenue
    with scopes_disabled():
        r.delight = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                                     title="Delight customers")
    return r


# Stored shares ---------------------------------------------------------------------------------

def test_shares_are_equal_across_all_parents_by_default(two):
    r = two
    set_extra(r, r.win, [(r.delight, None)])
    assert links(r.win) == {r.delight.pk: Decimal("0.5")}
    with scopes_disabled():
        third = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                                 title="Grow the partner channel")
    set_extra(r, r.win, [(r.delight, None), (third, None)])
    assert links(r.win) == {r.delight.pk: Decimal("0.3333"), third.pk: Decimal("0.3333")}


def test_a_share_set_for_one_parent_leaves_the_rest_to_the_others(two):
    r = two
    with scopes_disabled():
        third = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                                 title="Grow the partner channel")
    set_extra(r, r.win, [(r.delight, Decimal("0.2")), (third, None)])
    # 20% to "Delight customers"; the main parent and the third split the other 80%.
    assert links(r.win) == {r.delight.pk: Decimal("0.2"), third.pk: Decimal("0.4")}


@pytest.mark.parametrize("extras, message", [
    (lambda r: [(r.arr, None)], "already its main parent"),
    (lambda r: [(r.win, None)], "cannot contribute to itself"),
    (lambda r: [(r.delight, None), (r.delight, None)], "listed twice"),
    (lambda r: [(r.delight, Decimal("1"))], "less than 100%"),
    (lambda r: [(r.delight, Decimal("0.6")), (r.platform, Decimal("0.5"))],
     "leave a share for the main parent"),
])
def test_it_refuses_extra_parents_that_make_no_sense(two, extras, message):
    r = two
    with pytest.raises(ValidationError) as error:
        set_extra(r, r.win, extras(r))
    assert message in str(error.value)
    assert links(r.win) == {}


def test_an_extra_parent_of_another_cycle_or_organization_is_refused(two, world_b):
    r = two
    with scopes_disabled():
        later = CycleFactory(organization=r.org)
        elsewhere = ObjectiveFactory(organization=r.org, cycle=later, team=r.world.company,
                                     title="Next quarter's goal")
    with pytest.raises(ValidationError, match="another cycle"):
        set_extra(r, r.win, [(elsewhere, None)])
    with pytest.raises(ValidationError, match="this organization"):
        set_extra(r, r.win, [(world_b.company_objective, None)])
    assert links(r.win) == {}


def test_a_closed_cycle_refuses_extra_parents(two):
    r = two
    with scopes_disabled():
        Cycle.objects.filter(pk=r.cycle.pk).update(status=Cycle.Status.CLOSED)
    with pytest.raises(ValidationError, match="closed"):
        set_extra(r, r.win, [(r.delight, None)])
    assert links(r.win) == {}


def test_keeping_the_extra_parents_when_the_main_one_moves_to_one_of_them(two):
    r = two
    set_extra(r, r.win, [(r.delight, None)])
    o = fresh(r.win)
    with scope(organization=r.org):
        services.update_objective(
            membership=r.world.admin, objective=o, version=o.version, title=o.title, why=o.why,
            team=o.team, parent=r.delight, is_local=False, state=o.state)
    # "Delight customers" is now the main parent: not also an extra one.
    assert links(r.win) == {}


# The loop check --------------------------------------------------------------------------------

def test_a_main_parent_that_closes_a_loop_through_an_extra_link_is_refused(two):
    """A -> B as an extra parent, then B -> A as the main parent: refused, loop named."""
    r = two
    set_extra(r, r.win, [(r.platform, None)])  # Sales' objective also serves Engineering's
    p = fresh(r.platform)
    with scope(organization=r.org), pytest.raises(ValidationError) as error:
        services.update_objective(
            membership=r.world.admin, objective=p, version=p.version, title=p.title, why=p.why,
            team=p.team, parent=r.win, is_local=False, state=p.state)
    assert "loop" in str(error.value) and "Win enterprise customers" in str(error.value)
    assert fresh(r.platform).parent_id == r.arr.pk


def test_an_extra_parent_below_the_objective_is_refused(two):
    r = two
    with scopes_disabled():
        below = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales,
                                 parent=r.win, title="Book discovery calls")
    with pytest.raises(ValidationError, match="loop"):
        set_extra(r, r.win, [(below, None)])
    assert links(r.win) == {}


def test_an_extra_parent_that_closes_a_loop_through_a_dependency_is_refused(two):
    r = two
    # Engineering's objective depends on Sales' objective: Sales' health flows into it.
    with scopes_disabled():
        DependencyFactory(downstream=r.platform, upstream=r.win)
    with pytest.raises(ValidationError, match="loop"):
        set_extra(r, r.platform, [(r.win, None)])


# Roll-up and propagation -----------------------------------------------------------------------

def test_an_aligned_parent_counts_each_child_with_its_share(two,
                                                            django_capture_on_commit_callbacks):
    r = two
    set_extra(r, r.win, [(r.delight, None)])  # half here, half under "Reach $12M ARR"
    with scopes_disabled():
        Objective.objects.filter(pk__in=[r.arr.pk, r.delight.pk]).update(progress_mode="aligned")
    run(r, django_capture_on_commit_callbacks)
    # ARR: Sales' objective (60%, weight 1 x share 0.5) and Engineering's (0%, weight 1).
    assert fresh(r.arr).rolled_progress == pytest.approx(0.2)
    # Delight: only Sales' objective, at its share: 60%.
    assert fresh(r.delight).rolled_progress == pytest.approx(0.6)


def test_a_child_at_risk_flags_every_parent(two, django_capture_on_commit_callbacks):
    r = two
    set_extra(r, r.win, [(r.delight, None)])
    with scopes_disabled():
        KeyResult.objects.filter(pk=r.deals.pk).update(confidence="off_track")
    run(r, django_capture_on_commit_callbacks)
    for parent in (r.arr, r.delight):
        parent = fresh(parent)
        assert parent.effective_health in ("at_risk", "off_track"), parent.title
        assert "Win enterprise customers" in causes(parent), parent.title


def test_objectives_below_an_extra_parent_at_risk_are_told(two, django_capture_on_commit_callbacks):
    r = two
    set_extra(r, r.platform, [(r.delight, None)])
    with scopes_disabled():
        KeyResultFactory(objective=r.delight, title="Net promoter score", confidence="off_track",
                         current_value=Decimal(0))
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.platform).risk_above["id"] == r.delight.pk


# Matrix, over-cascading rule, tree, pages ------------------------------------------------------

def test_the_matrix_counts_an_objective_under_each_company_objective_it_serves(two):
    r = two
    set_extra(r, r.win, [(r.delight, None)])
    with scope(organization=r.org):
        m = matrix_data(r.org, r.cycle)
    columns = [c["title"] for c in m["columns"]]
    sales = next(row for row in m["rows"] if row["team"].name == "Sales")
    counts = dict(zip(columns, (c["count"] for c in sales["cells"]), strict=True))
    assert counts["Reach $12M ARR"] == 1 and counts["Delight customers"] == 1


def test_over_cascading_counts_the_company_objectives_reached_through_every_parent():
    company = [rules.Objective(id=i, title=f"Company {i}", team_id=1, team="Company",
                               team_kind="company") for i in (1, 2, 3)]
    sales = rules.Objective(id=10, title="Win", team_id=2, team="Sales", team_kind="team",
                            parent_id=1, also_parents=(2, 3))
    found = rules.over_cascading(rules.Cycle(objectives=[*company, sales]))
    assert [f.message for f in found] == [
        "Sales contributes to 3 company objectives; more than 2 spreads it thin."]
    one_parent = rules.Objective(id=10, title="Win", team_id=2, team="Sales", team_kind="team",
                                 parent_id=1)
    assert rules.over_cascading(rules.Cycle(objectives=[*company, one_parent])) == []


def test_the_objective_page_shows_both_parents_and_each_parent_lists_it(two, alice_client):
    r = two
    set_extra(r, r.win, [(r.delight, Decimal("0.25"))])
    page = alice_client.get(reverse("objective", args=[r.org.slug, r.win.pk])).content.decode()
    assert "(75%, main parent)" in page and 'data-testid="also-contributes-to"' in page
    assert "Delight customers" in page
    delight = alice_client.get(reverse("objective", args=[r.org.slug, r.delight.pk]))
    html = delight.content.decode()
    assert "Win enterprise customers" in html and "Also contributes here, 25%" in html
    arr = alice_client.get(reverse("objective", args=[r.org.slug, r.arr.pk])).content.decode()
    assert "share here 75%" in arr


def test_the_tree_marks_a_node_that_also_contributes_elsewhere(two, alice_client):
    r = two
    set_extra(r, r.win, [(r.delight, None)])
    response = alice_client.get(reverse("tree_children", args=[r.org.slug, r.arr.pk]),
                                HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'data-testid="also-marker"' in html and "Delight customers" in html


def test_the_objective_form_saves_extra_parents_with_their_shares(two, alice_client):
    r = two
    edit = reverse("objective_edit", args=[r.org.slug, r.win.pk])
    form = {"title": r.win.title, "team": r.sales.pk, "parent": r.arr.pk, "state": "draft",
            "version": fresh(r.win).version, "also_contributes_to": [r.delight.pk]}
    assert alice_client.post(edit, form).status_code == 302
    assert links(r.win) == {r.delight.pk: Decimal("0.5")}
    # The form now offers the share, which can be set; too much is refused, nothing lost.
    html = alice_client.get(edit).content.decode()
    assert f'name="share_{r.delight.pk}"' in html and 'value="50"' in html
    bad = alice_client.post(edit, {**form, "version": fresh(r.win).version,
                                   f"share_{r.delight.pk}": "99.99", "title": "New title"})
    assert bad.status_code == 302  # 99.99% leaves 0.01% to the main parent: allowed
    form["version"] = fresh(r.win).version
    response = alice_client.post(edit, {**form, f"share_{r.delight.pk}": "100",
                                        "title": "Kept title"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ensure this value is less than or equal to 99.99" in html
    assert "Kept title" in html and fresh(r.win).title == "New title"


def test_objective_page_queries_do_not_grow_with_extra_children(two, alice_client):
    r = two

    def grow(n):
        for i in range(n):
            with scopes_disabled():
                o = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales,
                                     parent=r.arr, title=f"Extra {i}")
                KeyResultFactory(objective=o)
                ObjectiveParent.objects.create(organization=r.org, objective=o,
                                               parent=r.delight, share=Decimal("0.5"))
                KeyResultFactory(objective=o, aligned_to=r.delight)

    grow(2)
    page = reverse("objective", args=[r.org.slug, r.delight.pk])
    small = count_queries(lambda: alice_client.get(page))
    grow(40)
    large = count_queries(lambda: alice_client.get(page))
    assert large[0].status_code == 200
    assert_same_queries(small, large)


# A key result aligned to another team's objective ----------------------------------------------

def align(r, key_result, objective, membership=None):
    with scope(organization=r.org):
        return services.align_key_result(membership=membership or r.world.admin,
                                         key_result=fresh(key_result), objective=objective)


def test_a_key_result_aligned_to_another_teams_objective_counts_there(
        revenue, django_capture_on_commit_callbacks, alice_client):
    r = revenue
    with scopes_disabled():
        docs = KeyResultFactory(objective=r.platform, title="Publish the SSO guide",
                                owner_team=r.eng, current_value=Decimal(100),
                                confidence="off_track")
        Objective.objects.filter(pk=r.win.pk).update(progress_mode="aligned")
    align(r, docs, r.win)
    run(r, django_capture_on_commit_callbacks)
    win = fresh(r.win)
    # Its own KR at 60% (weight 1) and the aligned KR at 100% (like an aligned objective).
    assert win.rolled_progress == pytest.approx(0.8)
    assert win.effective_health in ("at_risk", "off_track")
    assert "Publish the SSO guide" in causes(win)
    page = alice_client.get(reverse("objective", args=[r.org.slug, r.win.pk])).content.decode()
    assert 'data-testid="aligned-key-results"' in page and "Publish the SSO guide" in page
    own = alice_client.get(reverse("objective", args=[r.org.slug, r.platform.pk])).content
    assert 'data-testid="kr-aligned-to"' in own.decode()


def test_a_key_result_aligns_only_to_another_teams_live_objective_without_a_loop(revenue):
    r = revenue
    with scopes_disabled():
        docs = KeyResultFactory(objective=r.platform, title="Publish the SSO guide",
                                owner_team=r.eng)
        own_team = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng,
                                    parent=r.arr, title="Harden the API")
        DependencyFactory(downstream=docs, upstream=r.win)  # Sales' objective feeds the guide
    with pytest.raises(ValidationError, match="another team's objective"):
        align(r, docs, own_team)
    with pytest.raises(ValidationError, match="loop"):
        align(r, docs, r.win)
    assert fresh(docs).aligned_to_id is None


def test_aligning_a_key_result_is_refused_in_a_closed_cycle(revenue):
    r = revenue
    with scopes_disabled():
        Cycle.objects.filter(pk=r.cycle.pk).update(status=Cycle.Status.CLOSED)
    with pytest.raises(ValidationError, match="closed"):
        align(r, r.sso, r.win)


def test_the_align_page_saves_and_clears_the_alignment(revenue, alice_client):
    r = revenue
    page = reverse("key_result_align", args=[r.org.slug, r.sso.pk])
    assert alice_client.get(page).status_code == 200
    assert alice_client.post(page, {"aligned_to": r.win.pk}).status_code == 302
    assert fresh(r.sso).aligned_to_id == r.win.pk
    assert alice_client.post(page, {"aligned_to": ""}).status_code == 302
    assert fresh(r.sso).aligned_to_id is None


def test_only_the_teams_leads_align_its_key_results(revenue, bob_client):
    r = revenue
    page = reverse("key_result_align", args=[r.org.slug, r.sso.pk])
    assert bob_client.post(page, {"aligned_to": r.win.pk}).status_code == 403
    assert fresh(r.sso).aligned_to_id is None


def test_the_impact_of_an_at_risk_objective_counts_what_also_contributes_to_it_once():
    from dependencies import flows
    from dependencies.propagation import Result

    def o(parent, kind="team"):
        return {"parent_id": parent, "kind": kind, "team_id": 1 if kind == "company" else 2,
                "title": "x", "team": "T", "level": 0 if parent is None else 1}

    objectives = {1: o(None, "company"), 2: o(None, "company"), 3: o(1), 4: o(2)}
    results = {("o", 1): Result("at_risk", "at_risk"), ("o", 2): Result(None, "on_track"),
               ("o", 3): Result(None, "on_track"), ("o", 4): Result(None, "on_track")}

    def impact(extra):
        return flows.impacts(objectives, {}, [], results, {}, lambda node: {"id": node[1]},
                             extra)[1]

    assert impact(())["objectives"] == 1  # only its own child
    # 4 also contributes to 1, and 3 to 2 (which is not below 1): 3 and 4, each once.
    assert impact([(4, 1, 0.5), (3, 2, 0.5)])["objectives"] == 2


def test_a_change_of_an_extra_parent_asks_its_contributors_to_review(two):
    from alignment.models import RecascadeFlag

    r = two
    with scopes_disabled():
        below = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales,
                                 parent=r.win, title="Book discovery calls")
    set_extra(r, r.win, [(r.delight, None)])
    d = fresh(r.delight)
    with scope(organization=r.org):
        services.update_objective(
            membership=r.world.admin, objective=d, version=d.version,
            title="Delight customers in their first week", why=d.why, team=d.team, parent=None,
            is_local=False, state=d.state)
    with scopes_disabled():
        flagged = set(RecascadeFlag.objects.filter(source=r.delight)
                      .values_list("objective_id", flat=True))
    # What contributes to it as an extra parent, and what is aligned below that.
    assert flagged == {r.win.pk, below.pk}


def test_why_an_extra_parent_is_at_risk_names_the_child_that_also_serves_it(
        two, django_capture_on_commit_callbacks, alice_client):
    r = two
    set_extra(r, r.win, [(r.delight, None)])
    with scopes_disabled():
        KeyResult.objects.filter(pk=r.deals.pk).update(confidence="off_track")
    run(r, django_capture_on_commit_callbacks)
    page = alice_client.get(reverse("why_at_risk", args=[r.org.slug, "o", r.delight.pk]))
    html = page.content.decode()
    assert "Aligned objective “Win enterprise customers”" in html
    assert "Nothing else rolls up into it" not in html


def test_why_an_objective_is_at_risk_names_a_key_result_aligned_to_it(
        revenue, django_capture_on_commit_callbacks, alice_client):
    r = revenue
    with scopes_disabled():
        docs = KeyResultFactory(objective=r.platform, title="Publish the SSO guide",
                                owner_team=r.eng, current_value=Decimal(0),
                                confidence="off_track")
    align(r, docs, r.win)
    run(r, django_capture_on_commit_callbacks)
    html = alice_client.get(reverse("why_at_risk", args=[r.org.slug, "o", r.win.pk])
                            ).content.decode()
    assert "Key result “Publish the SSO guide” (" in html and "aligned to it" in html
