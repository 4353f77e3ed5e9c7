"""The rules' cheaper inputs and passes give what the plain ones give: objects made without the
dataclass ``__init__`` are the same objects, what a run derives once from its cycle is what each
rule derives alone, the roots of an objective are those of the recursive definition (loops and
extra parents included), the metric rule's quick look never misses a metric, and the report's
order is the sort by severity, rule and message."""

import random
from datetime import datetime

import pytest

from alignment import report, rules


def _roots(cycle):
    """The roots each live objective reaches, as the rule defined them before it was made
    cheaper (a recursion with the path so far)."""
    by_id = {o.id: o for o in rules._live(cycle)}
    memo = {}

    def find(o, seen=frozenset()):
        if o.id not in memo:
            parents = [by_id[p] for p in (o.parent_id, *o.also_parents)
                       if p in by_id and p not in seen]
            memo[o.id] = (set().union(*(find(p, seen | {o.id}) for p in parents)) if parents
                          else {o.id})
        return memo[o.id]

    return {o.id: find(o) for o in by_id.values()}


_TITLES = ["Grow revenue", "Grow revenue in Europe", "Cut churn to 3%", "Ship SSO",
           "Win the enterprise market", "Raise NPS from 30 to 45", "Hire 12 engineers",
           "Team goal 18", "Team goal 81", "Reach $2M ARR", "Make onboarding delightful"]
_KR_TITLES = ["Ship the new pipeline", "Launch SSO", "Close 12 deals", "Grow revenue",
              "Build a dashboard under 2 s", "Key result 7", "(Hire) a lead", "Cut churn to 3%"]


def _cycle(rng, size):
    """A random cycle: parents (some retired, some in loops through extra parents), teams of
    each kind, local flags, states, leads, themes and commitments."""
    teams = [(i, f"Team {i}", rng.choice(("company", "department", "team"))) for i in range(6)]
    objectives = []
    for i in range(1, size + 1):
        team_id, team, kind = rng.choice(teams)
        parent = rng.choice([None, *range(1, size + 1)]) if rng.random() < 0.8 else None
        also = tuple(rng.sample(range(1, size + 1), rng.randint(0, min(2, size)))) \
            if rng.random() < 0.3 else ()
        lead = rng.choice([None, 1, 2, 3])
        objectives.append(rules.Objective(
            id=i, title=rng.choice(_TITLES), team_id=team_id, team=team, team_kind=kind,
            parent_id=parent, is_local=rng.random() < 0.2,
            state=rng.choice(("published", "published", "draft", "approved", "retired")),
            owner_id=lead, owner="" if lead is None else f"Lead {lead}",
            theme=rng.choice(("", "Growth")), commitment=rng.choice(("committed", "aspirational")),
            also_parents=also))
    key_results = [rules.KeyResult(id=100 + i, objective_id=rng.randint(1, size),
                                   title=rng.choice(_KR_TITLES),
                                   owner_team=rng.choice(("", "Team 2")))
                   for i in range(size * 2)]
    return rules.Cycle(objectives=objectives, key_results=key_results,
                       alignment_model=rng.choice(("strict", "flexible", "thematic")),
                       local_share_limit=rng.choice((0.1, 0.35)),
                       now=datetime(2026, 11, 27))


def test_objects_made_without_init_are_the_same_objects():
    o = rules.objective(7, "Grow", 2, "Sales", "team", 3, True, "draft", 4, "Ada", "Growth",
                        "aspirational", (5, 6))
    plain = rules.Objective(id=7, title="Grow", team_id=2, team="Sales", team_kind="team",
                            parent_id=3, is_local=True, state="draft", owner_id=4, owner="Ada",
                            theme="Growth", commitment="aspirational", also_parents=(5, 6))
    assert o == plain and hash(o) == hash(plain) and repr(o) == repr(plain)
    assert o.__dict__ == plain.__dict__
    with pytest.raises(AttributeError):
        o.title = "Changed"  # still frozen
    k = rules.key_result(9, 7, "Ship it", "Ops")
    assert k == rules.KeyResult(id=9, objective_id=7, title="Ship it", owner_team="Ops")
    assert (k.created_at, k.last_check_in_at) == (None, None)
    f = rules._finding("sibling_overlap", rules.MEDIUM, "Same", "A and B", 7)
    plain = rules.Finding("sibling_overlap", rules.MEDIUM, "Same", "A and B", 7)
    assert f == plain and hash(f) == hash(plain) and repr(f) == repr(plain)


@pytest.mark.parametrize("seed", range(6))
def test_a_run_finds_what_each_rule_finds_alone(seed):
    """``run_all`` derives the live objectives, children and team objectives once for its
    cycle; each rule called alone (no run, or during another cycle's run) derives them itself,
    and the findings are the same."""
    rng = random.Random(seed)
    for _ in range(8):
        cycle = _cycle(rng, rng.randint(2, 40))
        alone = [f for rule in rules.RULES for f in rule(cycle)]
        rules.forget()
        assert rules.run_all(cycle) == rules.in_order(alone)
        assert rules._DERIVED == {}  # nothing derived is left for the next cycle
        other = _cycle(rng, 5)
        rules._DERIVED["cycle"] = other  # a run of another cycle under way
        try:
            assert [f for rule in rules.RULES for f in rule(cycle)] == alone
        finally:
            rules._DERIVED.clear()
    rules.forget()


@pytest.mark.parametrize("seed", range(6))
def test_the_roots_are_those_of_the_recursive_definition(seed):
    rng = random.Random(seed)
    for _ in range(40):
        cycle = _cycle(rng, rng.randint(1, 30))
        roots, by_id = rules._all_roots(cycle)
        assert roots == _roots(cycle)
        assert set(by_id) == {o.id for o in cycle.objectives if o.state != "retired"}


def test_the_roots_of_a_loop_through_extra_parents():
    def objective(pk, parent, also=()):
        return rules.Objective(id=pk, title="x", team_id=1, team="T", team_kind="team",
                               parent_id=parent, also_parents=also)

    cycle = rules.Cycle([objective(1, 3), objective(2, 1), objective(3, 2, (4,)),
                         objective(4, None), objective(5, 5)])
    roots, _ = rules._all_roots(cycle)
    assert roots == _roots(cycle)
    assert roots[4] == {4} and roots[5] == {5}


@pytest.mark.parametrize("seed", range(3))
def test_the_metric_rule_quick_look_misses_no_metric(seed):
    rng = random.Random(seed)
    pieces = ["Grow", "revenue", "from", "FROM", "to", "30", "45", "3.5", "%", "$", "€", "£",
              "k", "M", "bn", "x", "X", "3x", "40k", "12M", " ", "  ", "\t", "-", "fr", "om"]
    titles = [*_TITLES, "Reach 40 k users", "Go from 3 to 5", "Ten x better", "2bn", "3 x",
              "£ 4", "50 %"]
    titles += ["".join(rng.choice(pieces) + rng.choice(("", " ")) for _ in range(
        rng.randint(0, 8))) for _ in range(4000)]
    for title in titles:
        assert rules._names_metric(title) is (rules._METRIC.search(title) is not None), title


@pytest.mark.parametrize("seed", range(3))
def test_the_report_order_is_by_severity_rule_and_message(seed):
    rng = random.Random(seed)
    found = [rules.Finding(rng.choice(("orphan", "stale", "bottleneck")),
                           rng.choice((rules.HIGH, rules.MEDIUM, rules.LOW)),
                           rng.choice(("a", "b", "c", "B")), rng.choice(("x", "y")), i)
             for i in range(300)]
    assert rules.in_order(found) == sorted(
        found, key=lambda f: (rules.SEVERITY_ORDER[f.severity], f.rule, f.message))


def _diff_by_lists(found, rows):
    """The diff as ``prepare`` made it before it took the unique keys' way."""
    stored = {}
    for pk, *key in rows:
        stored.setdefault(tuple(key[:7]), []).append((pk, key[7] if len(key) > 7 else None))
    add, stays = [], []
    for f in found:
        key = (f.rule, f.severity, f.message, f.who, f.objective_id, f.key_result_id,
               f.dependency_id)
        ids = stored.get(key)
        if ids:
            pk, version = ids.pop()
            if f.rule not in report.TIMED_RULES:
                stays.append((key, pk, version))
        else:
            add.append(f)
    return add, stays, [pk for ids in stored.values() for pk, _ in ids]


@pytest.mark.parametrize("seed", range(4))
def test_the_diff_against_the_stored_findings(seed):
    """Findings found and rows stored, some the same, some twice on either side (a row copied
    by hand), with versions (PostgreSQL) or without: what is added, stays and goes is what the
    plain diff says."""
    rng = random.Random(seed)
    for _ in range(300):
        pool = [rules.Finding(rng.choice(("orphan", "stale", "sibling_overlap")),
                              rng.choice((rules.HIGH, rules.LOW)), rng.choice("abc"), "x",
                              rng.choice((None, 1, 2)), dependency_id=rng.choice((None, 3)))
                for _ in range(rng.randint(0, 8))]
        found = [rng.choice(pool) for _ in range(rng.randint(0, 10))] if pool else []
        versioned = rng.random() < 0.5
        rows = []
        for pk in range(1, rng.randint(0, 12) + 1):
            f = rng.choice(pool) if pool and rng.random() < 0.8 else rules.Finding(
                "orphan", rules.HIGH, "gone", "y", pk)
            row = (pk, f.rule, f.severity, f.message, f.who, f.objective_id, f.key_result_id,
                   f.dependency_id)
            rows.append((*row, f"v{pk}") if versioned else row)
        assert report._diff(found, rows) == _diff_by_lists(found, rows)


def test_a_key_hashed_once_is_the_plain_key():
    plain = ("shape", "flexible", tuple((i, None, (), 1, "T") for i in range(50)))
    once = rules._HashedOnce(plain)
    assert once == plain and hash(once) == hash(plain) == hash(once)
    assert {plain: "kept"}[once] == "kept" and {once: "kept"}[plain] == "kept"
