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


def _sibling_overlap_pair_by_pair(cycle):
    """The overlap rule's definition, plainly: every pair of siblings of different teams that
    share a word, in the order of their ids, each objective reported with the first it repeats
    (the rule makes its pairs one objective at a time and skips what is settled)."""
    live = {o.id: o for o in cycle.objectives if o.state != "retired"}
    families = {}
    for o in live.values():
        if o.team_kind != "company" and o.parent_id in live and not o.is_local:
            families.setdefault(o.parent_id, []).append(o)
    found, cache = [], {}
    for siblings in families.values():
        if len({o.team_id for o in siblings}) < 2:
            continue
        siblings.sort(key=lambda o: o.id)
        stems = [rules._stems(rules._Title(o.title)) for o in siblings]
        repeats = {}
        for i, a in enumerate(siblings):
            for j in range(i + 1, len(siblings)):
                b = siblings[j]
                if not stems[i] & stems[j] or a.team_id == b.team_id \
                        or (a.id in repeats and b.id in repeats):
                    continue
                if rules.alike(a.title, b.title, cache=cache):
                    repeats.setdefault(a.id, b)
                    repeats.setdefault(b.id, a)
        found += [(o.id, repeats[o.id].id) for o in siblings if o.id in repeats]
    return sorted(found)


@pytest.mark.parametrize("seed", range(6))
def test_the_overlap_rule_finds_what_comparing_every_pair_finds(seed):
    import random

    rng = random.Random(seed)
    words = ["grow", "growing", "the", "enterprise", "pipeline", "market", "users", "mobile",
             "ship", "faster", "our", "partner", "revenue", "churn", "cut", "support"]
    objectives = [company(1), company(2, "Expand to Europe")]
    for pk in range(3, 400):
        title = " ".join(rng.choice(words) for _ in range(rng.randint(2, 5)))
        objectives.append(team_obj(pk, title, team=f"T{rng.randint(1, 6)}",
                                   parent=rng.choice((1, 2, 3, 4)),
                                   local=rng.random() < 0.05))
    found = rules.sibling_overlap(Cycle(objectives))
    by_id = {o.id: o for o in objectives}
    expected = []
    for pk, other in _sibling_overlap_pair_by_pair(Cycle(objectives)):
        a, b = by_id[pk], by_id[other]
        expected.append((pk, f"“{a.title}” ({a.team}) and “{b.title}” ({b.team}) say the same "
                             f"thing under “{by_id[a.parent_id].title}”. Share one objective "
                             "between the two teams, or say how each contributes in its own "
                             "way."))
    assert len(expected) > 20
    assert sorted((f.objective_id, f.message) for f in found) == expected


@pytest.mark.parametrize("seed", range(8))
def test_the_overlap_rule_in_small_families_finds_what_comparing_every_pair_finds(seed):
    # Families of 2 to 12 siblings, on both sides of the size up to which the rule asks each
    # pair directly (``rules._FEW``): near copies ("Team goal 4403", "Team goal 4410"), titles
    # that share no stem or no word of three letters, teams that repeat.
    import random

    rng = random.Random(seed)
    words = ["grow", "growing", "the", "pipeline", "market", "users", "ship", "faster", "team",
             "goal", "churn", "a", "of", "cut"]
    objectives, pk = [], 1
    for _ in range(60):
        parent = pk
        objectives.append(company(parent))
        pk += 1
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.4:
                title = f"Team goal {rng.randint(4400, 4480)}"
            elif rng.random() < 0.25:
                title = rng.choice(["a of", "", "Ship!", "of the", "The a of"])
            else:
                title = " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
            objectives.append(team_obj(pk, title, team=f"T{rng.randint(1, 4)}", parent=parent,
                                       local=rng.random() < 0.05))
            pk += 1
    found = rules.sibling_overlap(Cycle(objectives))
    expected = _sibling_overlap_pair_by_pair(Cycle(objectives))
    assert len(expected) > 40
    assert sorted((f.objective_id, f.who) for f in found) == [
        (a, f"{objectives[a - 1].team} and {objectives[b - 1].team}") for a, b in expected]
    assert {len(siblings) for siblings in _families(objectives)} >= {2, rules._FEW,
                                                                     rules._FEW + 1}


def _families(objectives):
    families = {}
    for o in objectives:
        if o.parent_id is not None:
            families.setdefault(o.parent_id, []).append(o)
    return families.values()


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


# Issue 12: rules that say what they check ---------------------------------------------------------


def test_the_strict_model_reports_objectives_that_were_local_before_the_switch():
    objs = [company(1), team_obj(2, "Fix toil", local=True), team_obj(3, "Grow", parent=1),
            team_obj(4, "Tidy the brand", team="Marketing", local=True)]
    found = rules.run_all(Cycle(objs, alignment_model="strict"))
    assert sorted(rule_ids(f for f in found if f.objective_id in (2, 3, 4))) == [
        ("strict_local", 2), ("strict_local", 4)]
    [f] = [f for f in found if f.objective_id == 2]
    assert f.severity == rules.HIGH and f.who == "Sales"
    assert f.message == ("“Fix toil” is marked local, but this organization aligns strictly: "
                         "every team objective contributes to a parent. Align it, or retire it.")
    # In the flexible model a local objective is allowed (and counted by "too local").
    assert not any(f.rule == "strict_local" for f in rules.run_all(Cycle(objs)))


@pytest.mark.parametrize("state, closes", [
    ("draft", False), ("proposed", False), ("approved", True), ("published", True),
])
def test_only_an_approved_or_published_contribution_closes_a_coverage_gap(state, closes):
    c = Cycle([company(1, "Win the enterprise market"),
               team_obj(2, "Give buyers SSO", parent=1, state=state)])
    found = rules.coverage_gap(c)
    if closes:
        assert found == []
    else:
        [f] = found
        assert f.objective_id == 1
        assert f.message == ("No team contributes to “Win the enterprise market” yet: 1 draft "
                             "or proposed objective is not approved.")


def test_a_coverage_gap_with_nothing_below_says_so_plainly():
    [f] = rules.coverage_gap(Cycle([company(1, "Win the enterprise market")]))
    assert f.message == "No team contributes to “Win the enterprise market”."


def test_siblings_of_different_teams_that_say_the_same_thing_overlap():
    c = Cycle([company(1, "Win the enterprise market"),
               team_obj(2, "Grow the enterprise pipeline", team="Sales", parent=1),
               team_obj(3, "Grow our enterprise pipeline", team="Marketing", parent=1),
               team_obj(4, "Give enterprise buyers single sign-on", team="Engineering",
                        parent=1)])
    found = rules.sibling_overlap(c)
    assert rule_ids(found) == [("sibling_overlap", 2), ("sibling_overlap", 3)]
    assert found[0].message == (
        "“Grow the enterprise pipeline” (Sales) and “Grow our enterprise pipeline” (Marketing) "
        "say the same thing under “Win the enterprise market”. Share one objective between the "
        "two teams, or say how each contributes in its own way.")
    assert found[0].who == "Sales and Marketing" and found[0].severity == rules.MEDIUM


@pytest.mark.parametrize("objectives", [
    # The same team twice: a team's own business, not an overlap between teams.
    [team_obj(2, "Grow the enterprise pipeline", parent=1),
     team_obj(3, "Grow our enterprise pipeline", parent=1)],
    # Different parents: not siblings.
    [team_obj(2, "Grow the enterprise pipeline", team="Sales", parent=1),
     team_obj(3, "Grow our enterprise pipeline", team="Marketing", parent=9)],
    # Different words.
    [team_obj(2, "Grow the enterprise pipeline", team="Sales", parent=1),
     team_obj(3, "Give enterprise buyers single sign-on", team="Engineering", parent=1)],
    # Local objectives (no parent) are not siblings of each other.
    [team_obj(2, "Grow the enterprise pipeline", team="Sales", local=True),
     team_obj(3, "Grow our enterprise pipeline", team="Marketing", local=True)],
])
def test_what_is_not_an_overlap(objectives):
    c = Cycle([company(1), company(9, "Expand to Europe"), *objectives])
    assert rules.sibling_overlap(c) == []


def test_an_objective_overlaps_once_however_many_siblings_repeat_it():
    objs = [company(1)] + [team_obj(i, "Grow the enterprise pipeline", team=f"T{i}", parent=1)
                           for i in range(2, 7)]
    found = rules.sibling_overlap(Cycle(objs))
    assert sorted(f.objective_id for f in found) == [2, 3, 4, 5, 6]


def test_the_overlap_check_runs_difflib_only_for_pairs_that_could_be_similar(monkeypatch):
    import random

    calls = []
    real = rules.SequenceMatcher

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(rules, "SequenceMatcher", counting)
    rng = random.Random(5)
    letters = "abcdefghijklmnopqrstuvwxyz"
    different = [team_obj(i, " ".join("".join(rng.choice(letters) for _ in range(6))
                                      for _ in range(4)), team=f"T{i}", parent=1)
                 for i in range(2, 202)]
    pair = [team_obj(300, "Grow the enterprise pipeline", team="Sales", parent=1),
            team_obj(301, "Grow the enterprise pipeline!", team="Marketing", parent=1)]
    found = rules.sibling_overlap(Cycle([company(1), *different, *pair]))
    assert sorted(f.objective_id for f in found) == [300, 301]
    assert len(calls) <= 5  # 20,301 pairs: the cheap bounds settle nearly all of them
    # Siblings that all repeat each other: each is compared until it is found once.
    calls.clear()
    alike = [team_obj(i, f"Ship feature number {i} to mobile users", team=f"T{i}", parent=1)
             for i in range(2, 202)]
    found = rules.sibling_overlap(Cycle([company(1), *alike]))
    assert len(found) == 200
    assert len(calls) <= 250  # not 19,900


@pytest.mark.parametrize("title, fires", [
    ("Ship the new bundle pipeline", True),
    ("Launch the partner referral program", True),
    ("Launch the 3 most-requested features", True),
    ("Build a self-serve onboarding flow", True),
    ("Roll out SSO to every enterprise account", True),
    ("Implement usage-based billing", True),
    ("Grow ARR from $8.4M to $12M", False),
    ("Cut pages per week from 30 to 10", False),
    ("Close 12 enterprise deals", False),
    ("Add 300 new paying customers", False),
    ("Move 200 accounts to annual plans", False),
    ("SSO available to enterprise prospects", False),
    ("Ship 95% of releases without a rollback", False),  # the share it measures is an outcome
    ("Shipping costs down from $9 to $6 per order", False),
])
def test_task_shaped_key_results_are_reported(title, fires):
    c = Cycle([team_obj(2, "Make the web app fast", team="Web App")],
              key_results=[KeyResult(10, 2, title)])
    found = rules.task_key_result(c)
    assert bool(found) is fires
    if fires:
        [f] = found
        assert (f.objective_id, f.key_result_id, f.who, f.severity) == (
            2, 10, "Web App", rules.LOW)
        assert f.message == (
            f"“{title}” describes a task, not a result. Measure what the task should change "
            "(who uses it, what gets faster or more reliable) and keep the task in the team's "
            "plan.")


def test_the_team_that_owns_a_task_shaped_key_result_acts_on_it():
    c = Cycle([team_obj(2, "Win more enterprise customers", team="Sales")],
              key_results=[KeyResult(10, 2, "Ship SSO", owner_team="Engineering")])
    [f] = rules.task_key_result(c)
    assert f.who == "Engineering"


def test_task_shaped_key_results_of_retired_objectives_are_not_reported():
    c = Cycle([team_obj(2, "Old", state="retired")],
              key_results=[KeyResult(10, 2, "Ship the new bundle pipeline")])
    assert rules.task_key_result(c) == []


def test_every_rule_has_a_title_and_runs():
    assert {r.__name__ for r in rules.RULES} >= {"sibling_overlap", "task_key_result"}
    assert {"strict_local", "sibling_overlap", "task_key_result"} <= set(rules.TITLES)


def test_only_the_rules_that_report_needs_to_rerun_read_the_clock():
    """A recompute that finds the data unchanged reruns only ``report.TIMED`` and keeps the
    other rules' stored findings: those must find the same at any time."""
    import inspect

    from alignment import report

    reads_clock = {rule for rule in rules.RULES if ".now" in inspect.getsource(rule)}
    assert reads_clock == set(report.TIMED)
    assert [rule.__name__ for rule in report.TIMED] == list(report.TIMED_RULES)
    then = datetime(2027, 2, 1, 9, tzinfo=UTC)
    objectives = [company(1), team_obj(2, "Grow the enterprise pipeline", parent=1),
                  team_obj(3, "Grow our enterprise pipeline", team="Marketing", parent=1)]
    key_results = [KeyResult(10, 2, "Ship the pipeline", created_at=then - timedelta(days=20)),
                   KeyResult(11, 3, "Reach 40% win rate", created_at=then,
                             last_check_in_at=then - timedelta(days=3))]
    dependencies = [Dependency(20, "requested", then - timedelta(days=2), "Sales", "Marketing",
                               "Leads")]
    for rule in rules.RULES:
        at = [rule(Cycle(objectives, key_results, dependencies, now=then + timedelta(days=d)))
              for d in (0, 30)]
        assert (at[0] != at[1]) == (rule in report.TIMED), rule.__name__
