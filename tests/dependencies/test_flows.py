"""Progress that flows up, risk that flows down, and the impact of an at-risk objective
(``dependencies.flows``): the pure rules, table-driven."""

from types import SimpleNamespace

import pytest

from dependencies import flows


def obj(parent=None, level=0, mode="key_results", kr_weight=1, weight=1, kind="team",
        title="", team="T", team_id=1):
    return {"parent_id": parent, "level": level, "mode": mode, "kr_weight": kr_weight,
            "weight": weight, "kind": kind, "title": title, "team": team, "team_id": team_id}


@pytest.mark.parametrize(("tree", "own", "expected"), [
    # Own key results only: nothing rolled.
    ({1: obj(), 2: obj(parent=1, level=1)}, {1: 0.2, 2: 0.8}, {}),
    # Key results (weight 1) and one aligned objective (weight 1): the mean.
    ({1: obj(mode="aligned"), 2: obj(parent=1, level=1)}, {1: 0.2, 2: 0.8}, {1: 0.5}),
    # Weights count: the aligned objective weighs 3.
    ({1: obj(mode="aligned"), 2: obj(parent=1, level=1, weight=3)}, {1: 0.2, 2: 0.8},
     {1: 0.65}),
    # A company objective with no key results of its own takes its teams' work.
    ({1: obj(mode="aligned"), 2: obj(parent=1, level=1), 3: obj(parent=1, level=1)},
     {1: None, 2: 0.4, 3: 1.0}, {1: 0.7}),
    # A chain adds up: 3 rolls into 2, 2 (rolled) into 1.
    ({1: obj(mode="aligned"), 2: obj(parent=1, level=1, mode="aligned"),
      3: obj(parent=2, level=2)}, {1: None, 2: 0.0, 3: 1.0}, {1: 0.5, 2: 0.5}),
    # Nothing to measure anywhere: unknown, not 0%.
    ({1: obj(mode="aligned"), 2: obj(parent=1, level=1)}, {1: None, 2: None}, {1: None}),
])
def test_progress_rolls_up_from_aligned_objectives_by_weight(tree, own, expected):
    assert flows.roll_up_progress(tree, own) == expected


def test_risk_flows_down_to_every_objective_below_the_nearest_at_risk_one():
    tree = {1: obj(kind="company", title="Company goal"),
            2: obj(parent=1, level=1, kind="department", title="Dept goal"),
            3: obj(parent=2, level=2, title="Team goal"),
            4: obj(parent=3, level=3, title="Sub-team goal"),
            5: obj(title="Other company goal", kind="company")}
    flags = flows.risk_above(tree, {1: "off_track", 2: "on_track", 3: "on_track"})
    assert {pk: f["id"] for pk, f in flags.items()} == {2: 1, 3: 1, 4: 1}
    assert flags[4]["title"] == "Company goal" and flags[4]["health"] == "off_track"
    # The nearest at-risk objective above is the one named.
    flags = flows.risk_above(tree, {1: "off_track", 2: "at_risk"})
    assert {pk: f["id"] for pk, f in flags.items()} == {2: 1, 3: 2, 4: 2}
    # A team objective at risk does not flag what is below it; a recovered tree has no flag.
    assert flows.risk_above(tree, {3: "off_track"}) == {}
    assert flows.risk_above(tree, {1: "on_track", 2: "on_track"}) == {}


def R(own, effective=None, causes=()):
    return SimpleNamespace(own=own, effective=effective or own, causes=causes)


def test_impact_counts_what_is_below_and_downstream_and_ranks_root_causes_by_weight():
    tree = {1: obj(kind="company", title="Company", team="Co", team_id=1),
            2: obj(parent=1, level=1, kind="department", title="Sales goal", team="Sales",
                   team_id=2),
            3: obj(parent=1, level=1, kind="department", title="Eng goal", team="Eng",
                   team_id=3),
            4: obj(title="Marketing goal", kind="department", team="Marketing", team_id=4)}
    krs = {10: {"objective_id": 2, "weight": 1}, 11: {"objective_id": 2, "weight": 3},
           20: {"objective_id": 3, "weight": 1}, 40: {"objective_id": 4, "weight": 1}}
    results = {("o", 1): R("on_track", "off_track"), ("o", 2): R("at_risk"),
               ("o", 3): R("off_track"), ("o", 4): R("on_track", "at_risk"),
               ("k", 10): R("at_risk"), ("k", 11): R("on_track"), ("k", 20): R("off_track"),
               ("k", 40): R("on_track", "at_risk", ((("k", 20),),))}
    members = {1: {100}, 2: {101, 102}, 3: {102, 103}, 4: {104}}
    out = flows.impacts(tree, krs, [(("k", 20), ("k", 40))], results, members,
                        lambda node: {"node": list(node)})
    assert set(out) == {1, 2, 3, 4}  # the at-risk company and department objectives
    company = out[1]
    assert (company["teams"], company["objectives"], company["key_results"],
            company["dependencies"], company["people"]) == (4, 3, 3, 1, 5)
    # Eng's KR 20 is off track and half the company objective: it weighs most.
    assert [c["node"] for c in company["causes"]] == [["k", 20], ["k", 10]]
    assert [c["weight"] for c in company["causes"]] == [50, 6]
    assert company["top_objectives"][0] == {"node": ["o", 3]}  # the off-track one first
    # Marketing's objective depends on Eng's KR: downstream of Eng goal, not below it.
    assert out[3]["objectives"] == 1 and out[3]["dependencies"] == 1
    assert "Marketing" in out[3]["team_names"]
    # An upstream dependency outside an objective's subtree is one of its root causes.
    marketing = flows.impacts(tree, krs, [(("k", 20), ("k", 40))],
                              {**results, ("o", 4): R("on_track", "at_risk")}, members,
                              lambda node: {"node": list(node)})[4]
    assert [c["node"] for c in marketing["causes"]] == [["k", 20]]
