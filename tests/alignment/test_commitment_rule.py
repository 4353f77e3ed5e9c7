"""Committed and aspirational objectives: the report's rule for a team with no mix, the
objective form and service, and the tag wherever an objective is listed."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from alignment import report, rules
from alignment.rules import Cycle, Objective
from okrs import services
from okrs.models import Objective as ObjectiveModel

from ..factories import ObjectiveFactory


def obj(i, team="Sales", commitment="committed", state="published", team_kind="department"):
    return Objective(i, f"Objective {i}", hash(team) % 1000, team, team_kind, None, False,
                     state, commitment=commitment)


@pytest.mark.parametrize("objectives, found", [
    ([obj(1), obj(2)], [("Sales", "committed")]),
    ([obj(1, commitment="aspirational"), obj(2, commitment="aspirational"),
      obj(3, commitment="aspirational")], [("Sales", "aspirational")]),
    ([obj(1), obj(2, commitment="aspirational")], []),                 # a mix
    ([obj(1)], []),                                                    # one is not a pattern
    ([obj(1, commitment="aspirational")], []),
    ([obj(1), obj(2, state="retired")], []),                           # retired ones do not count
    ([obj(1), obj(2), obj(3, commitment="aspirational", state="retired")],
     [("Sales", "committed")]),
    ([obj(1, state="draft"), obj(2, state="proposed")], [("Sales", "committed")]),  # live
    ([obj(1), obj(2, team="Eng"), obj(3, team="Eng", commitment="aspirational")], []),
    ([obj(1, team="Acme", team_kind="company"), obj(2, team="Acme", team_kind="company")],
     [("Acme", "committed")]),                                         # the company too
    ([obj(1, team="Eng"), obj(2, team="Eng"), obj(3, commitment="aspirational"),
      obj(4, commitment="aspirational")], [("Eng", "committed"), ("Sales", "aspirational")]),
])
def test_a_team_with_no_mix_of_committed_and_aspirational_is_flagged(objectives, found):
    findings = rules.commitment_mix(Cycle(objectives))
    assert [(f.who, "aspirational" if "aspirational, so" in f.message else "committed")
            for f in findings] == found
    assert all(f.rule == "commitment_mix" and f.severity == rules.LOW for f in findings)


def test_the_findings_say_how_many_and_what_to_do():
    [committed] = rules.commitment_mix(Cycle([obj(1), obj(2), obj(3)]))
    assert committed.message == ("Sales: all 3 objectives are committed, so none stretches the "
                                 "team. Consider making one aspirational.")
    [stretch] = rules.commitment_mix(Cycle([obj(1, commitment="aspirational"),
                                            obj(2, commitment="aspirational")]))
    assert "Mark what you will surely deliver as committed." in stretch.message


def test_the_rule_runs_with_the_others_and_has_a_title():
    assert rules.commitment_mix in rules.RULES and "commitment_mix" in rules.TITLES
    assert any(f.rule == "commitment_mix" for f in rules.run_all(Cycle([obj(1), obj(2)])))


# The stored report reads each objective's commitment --------------------------------------------

pytestmark = pytest.mark.django_db


def test_the_report_reads_the_commitment_of_each_objective(world_a):
    with scope(organization=world_a.org):
        # The company has two committed objectives; its team one, which is not a pattern.
        assert [f.who for f in report.findings(world_a.org, world_a.cycle)
                if f.rule == "commitment_mix"] == [world_a.company.name]
        ObjectiveModel.objects.filter(pk=world_a.other_objective.pk).update(
            commitment="aspirational")
        assert not [f for f in report.findings(world_a.org, world_a.cycle)
                    if f.rule == "commitment_mix"]


# The form, the service, the tag ------------------------------------------------------------------

def test_a_new_objective_is_committed_unless_the_form_says_aspirational(world_a, alice_client):
    new = reverse("objective_new", args=[world_a.org.slug]) + f"?cycle={world_a.cycle.pk}"
    html = alice_client.get(new).content.decode()
    assert re.search(r'value="committed"[^>]*checked', html)
    assert "Aspirational: a stretch; about 0.7 is a good result" in html
    base = {"title": "Stretch goal", "team": world_a.team.pk, "is_local": "on",
            "state": "draft"}
    assert alice_client.post(new, base | {"commitment": "aspirational"}).status_code == 302
    assert alice_client.post(new, base | {"title": "Sure thing"}).status_code == 302
    with scopes_disabled():
        assert ObjectiveModel.objects.get(title="Stretch goal").commitment == "aspirational"
        assert ObjectiveModel.objects.get(title="Sure thing").commitment == "committed"


def test_editing_an_objective_keeps_or_changes_its_commitment(world_a, alice_client):
    o = world_a.objective
    edit = reverse("objective_edit", args=[world_a.org.slug, o.pk])
    form = {"title": o.title, "team": o.team_id, "parent": o.parent_id, "state": o.state,
            "version": o.version, "commitment": "aspirational"}
    assert alice_client.post(edit, form).status_code == 302
    with scopes_disabled():
        o.refresh_from_db()
    assert o.commitment == "aspirational"
    assert re.search(r'value="aspirational"[^>]*checked', alice_client.get(edit).content.decode())


def test_the_service_refuses_an_unknown_commitment(world_a):
    with scope(organization=world_a.org), pytest.raises(ValidationError) as e:
        services.create_objective(membership=world_a.admin, cycle=world_a.cycle,
                                  team=world_a.team, title="x", is_local=True,
                                  commitment="maybe")
    assert "commitment" in e.value.message_dict


def test_the_tag_shows_wherever_objectives_are_listed(world_a, alice_client):
    ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=world_a.team,
                     parent=world_a.company_objective, title="A stretch", state="proposed",
                     commitment="aspirational")
    slug = world_a.org.slug
    pages = {
        "objective page": reverse("objective", args=[slug, world_a.objective.pk]),
        "team page": reverse("team", args=[slug, world_a.team.pk]),
        "home": reverse("home", args=[slug]),
        "tree": reverse("tree", args=[slug]),
        "tree children": reverse("tree_children", args=[slug, world_a.company_objective.pk]),
        "review queue": reverse("review", args=[slug]),
    }
    for name, url in pages.items():
        htmx = {"HTTP_HX_REQUEST": "true"} if name == "tree children" else {}
        assert 'class="tag commitment-' in alice_client.get(url, **htmx).content.decode(), name
    review = alice_client.get(pages["review queue"]).content.decode()
    assert 'class="tag commitment-aspirational"' in review and ">Aspirational<" in review
