"""Each misalignment rule on its own: cases that fire and cases that must not."""

from datetime import UTC, datetime, timedelta

import pytest

from alignment import rules
from alignment.rules import Cycle, Dependency, KeyResult, Objective

NOW = datetime(2027, 2, 15, 12, tzinfo=UTC)


def company(i, title="Win the enterprise market"):
    return Objective(i, title, 1, "Acme", "company")


def team_obj(i, title, team="Sales", parent=None, local=False, team_id=None, owner=None,
             theme="", state="published"):
    return Objective(i, title, team_id or hash(team) % 1000, team, "department", parent, local,
                     state, owner, f"Person {owner}" if owner else "", theme)


def rule_ids(found):
    return [(f.rule, f.objective_id) for f in found]


def test_orphan_fires_on_an_unaligned_team_objective_only():
    c = Cycle([company(1), team_obj(2, "Close deals"), team_obj(3, "Fix toil", local=True),
               team_obj(4, "Grow pipeline", parent=1)])
    assert rule_ids(rules.orphans(c)) == [("orphan", 2)]
    # A parent that is retired (not in the live set) leaves the child orphaned too.
    c = Cycle([company(1, "Old"), team_obj(2, "Child", parent=9)])
    assert rule_ids(rules.orphans(c)) == [("orphan", 2)]


def test_orphan_in_the_thematic_model_means_no_theme():
    c = Cycle([team_obj(2, "Close deals"), team_obj(3, "Speed", theme="Enterprise")],
              alignment_model="thematic")
    assert rule_ids(rules.orphans(c)) == [("orphan", 2)]


def test_too_local_per_team_and_for_the_organization():
    objs = [company(1), team_obj(2, "a", local=True), team_obj(3, "b", parent=1),
            team_obj(4, "c", team="Eng", parent=1), team_obj(5, "d", team="Eng", parent=1)]
    # Sales: 1 of 2 local = 50% > 35%. Org: 1 of 4 = 25%: fine.
    found = rules.too_local(Cycle(objs))
    assert [f.who for f in found] == ["Sales"]
    assert "50%" in found[0].message
    assert rules.too_local(Cycle(objs, local_share_limit=0.5)) == []
    assert rules.too_local(Cycle(objs, alignment_model="strict")) == []
    objs = [team_obj(i, str(i), team=f"T{i}", local=i % 2 == 0) for i in range(2, 8)]
    assert any(f.who == "Alignment lead" for f in rules.too_local(Cycle(objs)))


def test_copy_paste_cascade_compares_wording():
    c = Cycle([company(1, "Win the enterprise market"),
               team_obj(2, "Win the enterprise market!", parent=1),
               team_obj(3, "Give enterprise buyers single sign-on", parent=1)])
    assert rule_ids(rules.copy_paste(c)) == [("copy_paste", 2)]
    assert rules.similarity("Win the enterprise market", "win the Enterprise market.") == 1.0
    assert rules.similarity("Win the enterprise market", "Ship SSO") < rules.SIMILAR


def test_a_key_result_turned_objective():
    c = Cycle([company(1), team_obj(2, "Close 12 enterprise deals", parent=1),
               team_obj(3, "Build a repeatable sales motion", parent=1)],
              key_results=[KeyResult(10, 1, "Close 12 enterprise deals this quarter")])
    assert rule_ids(rules.kr_as_objective(c)) == [("kr_as_objective", 2)]


@pytest.mark.parametrize("title, fires", [
    ("Grow revenue by 30%", True),
    ("Reach $12M ARR", True),
    ("Grow MQLs from 400 to 900", True),
    ("3x the pipeline", True),
    ("Become the product customers recommend first", False),
    ("Win in the top 5 markets", False),
    ("Launch v2 of the mobile app", False),
])
def test_an_objective_phrased_as_a_number(title, fires):
    assert bool(rules.metric_objective(Cycle([team_obj(2, title)]))) is fires


def test_over_cascading_counts_distinct_company_objectives():
    objs = [company(1, "A"), company(2, "B"), company(3, "C"),
            team_obj(10, "x", team="Sales", parent=1), team_obj(11, "y", team="Sales", parent=2),
            team_obj(12, "z", team="Sales", parent=3), team_obj(13, "w", team="Eng", parent=1),
            team_obj(14, "v", team="Eng", parent=1)]
    found = rules.over_cascading(Cycle(objs))
    assert [f.who for f in found] == ["Sales"]
    # Two levels down still counts for the root.
    objs = [company(1, "A"), team_obj(10, "x", team="Eng", parent=1),
            team_obj(11, "y", team="Web", parent=10)]
    assert rules.over_cascading(Cycle(objs)) == []


def test_coverage_gap():
    c = Cycle([company(1, "A"), company(2, "B"), team_obj(3, "x", parent=1)])
    assert rule_ids(rules.coverage_gap(c)) == [("coverage_gap", 2)]
    assert rules.coverage_gap(Cycle([company(1)], alignment_model="thematic")) == []


def test_bottleneck_over_the_threshold():
    many = [team_obj(i, f"o{i}", team=f"T{i}", owner=7, parent=None, local=True)
            for i in range(2, 2 + rules.BOTTLENECK_OBJECTIVES + 1)]
    assert [f.who for f in rules.bottleneck(Cycle(many))] == ["Person 7"]
    assert rules.bottleneck(Cycle(many[:-1])) == []


def test_stale_published_key_results():
    krs = [KeyResult(10, 2, "Old", NOW - timedelta(days=40), NOW - timedelta(days=15)),
           KeyResult(11, 2, "Fresh", NOW - timedelta(days=40), NOW - timedelta(days=2)),
           KeyResult(12, 2, "Never", NOW - timedelta(days=20), None),
           KeyResult(13, 2, "New", NOW - timedelta(days=3), None),
           KeyResult(14, 3, "Draft one", NOW - timedelta(days=40), None)]
    c = Cycle([team_obj(2, "x"), team_obj(3, "y", state="draft")], key_results=krs, now=NOW)
    assert sorted(f.key_result_id for f in rules.stale(c)) == [10, 12]


def test_unanswered_dependency_after_the_escalation_time():
    deps = [Dependency(1, "requested", NOW - timedelta(days=6), "Sales", "Eng", "SSO"),
            Dependency(2, "requested", NOW - timedelta(days=2), "Sales", "Eng", "Audit log"),
            Dependency(3, "committed", NOW - timedelta(days=30), "Sales", "Eng", "API")]
    found = rules.unowned_dependency(Cycle([], dependencies=deps, now=NOW))
    assert [f.dependency_id for f in found] == [1]
    assert found[0].who == "Eng"


def test_run_all_sorts_by_severity():
    c = Cycle([company(1, "Grow revenue by 30%"), team_obj(2, "Close deals")], now=NOW)
    found = rules.run_all(c)
    assert [f.severity for f in found] == sorted(
        (f.severity for f in found), key=rules.SEVERITY_ORDER.__getitem__)
    assert {f.rule for f in found} >= {"orphan", "coverage_gap", "metric_objective"}


def test_more_than_five_company_objectives_is_flagged():
    assert rules.too_many_company_objectives(Cycle([company(i, str(i)) for i in range(5)])) == []
    [f] = rules.too_many_company_objectives(Cycle([company(i, str(i)) for i in range(6)]))
    assert "6 company objectives" in f.message
