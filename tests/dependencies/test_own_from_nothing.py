"""A run that kept nothing of a cycle makes its own healths and edges in one lean pass
(``network._given_by_all``), its impacts with shares kept only where a root cause can weigh,
and its risk above in a loop for one parent each. Each is held here to the way it replaces
(the row by row loop) or to a plain computation of the same rules, on random rows with the odd
values a run can meet, and what it keeps for the next run must be the same too."""

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from dependencies import flows, network
from dependencies.propagation import AT_RISK, OFF_TRACK, ON_TRACK, Result
from okrs import progress

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
KINDS = ("numeric", "numeric", "numeric", "keep_above", "keep_below", "baseline", "milestone")
VALUES = ("0.0000", "100.0000", "50.0000", "-2.5000", "100.0000", None)
CONFIDENCES = ("", None, "on_track", "at_risk", "off_track")


def _data(rng, n_objectives=60, n_key_results=240):
    teams = list(range(1, 6))
    objectives = {pk: {"team_id": rng.choice(teams), "title": f"O{pk}",
                       "parent_id": rng.randrange(1, pk) if pk > 1 and rng.random() < 0.8
                       else None}
                  for pk in range(1, n_objectives + 1)}
    key_results = {}
    for pk in range(1000, 1000 + n_key_results):
        start, target = rng.choice(VALUES), rng.choice(VALUES)
        last = rng.choice((None, NOW - timedelta(days=rng.randint(0, 30)),
                           NOW - progress.STALE_AFTER))  # the boundary: not stale
        key_results[pk] = {
            "objective_id": rng.randrange(1, n_objectives + 8),  # some of no objective here
            "title": f"K{pk}", "kind": rng.choice(KINDS), "start_value": start,
            "target_value": target, "current_value": rng.choice(VALUES),
            "is_done": rng.random() < 0.3, "confidence": rng.choice(CONFIDENCES),
            "last_check_in_at": last, "weight": rng.choice(("1.00", "0.30", "2.50")),
            "owner_team_id": rng.choice((*teams, None)),
            "aligned_to_id": rng.randrange(1, n_objectives + 8) if rng.random() < 0.1
            else None,
            "feeds_id": rng.randrange(990, 1000 + n_key_results) if rng.random() < 0.1
            else None,
            "rollup": rng.choice(("", "", "sum", "mean"))}
    dependencies = [(rng.randrange(1, n_objectives), None, rng.randrange(1, n_objectives), None,
                     rng.choice(("active", "broken"))) for _ in range(10)]
    return {"objectives": objectives, "key_results": key_results, "dependencies": dependencies,
            "extra_parents": [(5, 2, Decimal("0.3000"))], "share_leads": {}, "skipped": []}


def _run(cycle, data, now):
    """One run of the own healths from what ``data`` holds (a copy of it), and what it kept."""
    data = {**data, "objectives": dict(data["objectives"]),
            "key_results": dict(data["key_results"]), "skipped": []}
    own, edges, rolled = network._own_health_and_edges(cycle, data, now)
    gave = {pk: (k["objective_id"], *rest) for pk, (k, *rest) in
            network._GAVE[cycle.pk].items()}
    kept = network._OWN.get(cycle.pk)
    kept = kept and (kept.elapsed, kept.own, kept.kr_edges, kept.edges, kept.kr_given,
                     kept.own_progress, kept.aligned_key_results)
    return {"own": list(own.items()), "edges": edges, "rolled": rolled,
            "aligned": data["aligned_key_results"], "own_progress": data["own_progress"],
            "skipped": data["skipped"], "gave": list(gave.items()), "kept": kept,
            "healths": list(network._HEALTHS.current.items()),
            "previous": list(network._HEALTHS.previous.items())}


def _by_the_loop(monkeypatch):
    monkeypatch.setattr(network, "_given_by_all", lambda *args: None)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("start", [date(2026, 6, 1), date(2026, 6, 15), date(2026, 1, 1)])
def test_the_own_healths_from_nothing_are_those_of_the_row_by_row_loop(seed, start,
                                                                      monkeypatch):
    """Random key results (values that raise, confidences "" and None, stale and not, of no
    objective, of another team, aligned, feeding one there or not, rolled up): the own
    healths, edges, parts and what is kept (``_GAVE``, ``_OWN``, ``_HEALTHS``) are the loop's,
    in its order, for a cycle not started, running, and over; and so is the next run."""
    cycle = SimpleNamespace(pk=1, organization_id=1, start_date=start,
                            end_date=date(2026, 6, 30))
    data = _data(random.Random(seed))
    network.forget(saved=False)
    got = _run(cycle, data, NOW)
    again = _run(cycle, data, NOW + timedelta(days=1))  # the rows kept, the next day
    with monkeypatch.context() as m:
        _by_the_loop(m)
        network.forget(saved=False)
        assert got == _run(cycle, data, NOW)
        assert again == _run(cycle, data, NOW + timedelta(days=1))
    network.forget(saved=False)


def test_a_row_whose_health_raises_is_left_out_as_the_loop_leaves_it(monkeypatch):
    """A health that raises what is not a value's error (a bug) leaves its rows out and the
    rows feeding them see them gone: the lean pass gives the run to the loop."""
    cycle = SimpleNamespace(pk=1, organization_id=1, start_date=date(2026, 6, 1),
                            end_date=date(2026, 6, 30))
    data = _data(random.Random(3))
    key_result_health = progress.key_result_health

    def failing(kind, *args):
        if kind == "baseline":
            raise RuntimeError("a bug")
        return key_result_health(kind, *args)

    monkeypatch.setattr(progress, "key_result_health", failing)
    network.forget(saved=False)
    got = _run(cycle, data, NOW)
    assert got["skipped"] and all(s["reason"] == "RuntimeError: a bug" for s in got["skipped"])
    _by_the_loop(monkeypatch)
    network.forget(saved=False)
    assert got == _run(cycle, data, NOW)
    network.forget(saved=False)


def _reference_reads(objectives, key_results, dependencies, results, extra_links):
    """What each root's impact reads, by the rules: its subtree (objectives and their key
    results), what flows into and out of it, the objectives downstream, the causes it weighs."""
    children = defaultdict(list)
    for pk, o in objectives.items():
        if o["parent_id"] in objectives:
            children[o["parent_id"]].append(pk)
    for child, parent, _ in extra_links:
        if child in objectives and parent in objectives:
            children[parent].append(child)
    dependents, into = defaultdict(list), defaultdict(list)
    for up, down in dependencies:
        dependents[up].append(down)
        into[down].append(up)

    def bad(node):
        return node in results and results[node].effective in flows.BAD

    reads = {}
    for root, o in objectives.items():
        if o["kind"] not in flows.UPPER_KINDS or not bad(("o", root)):
            continue
        subtree, stack = set(), [root]
        while stack:
            pk = stack.pop()
            if pk not in subtree:
                subtree.add(pk)
                stack += children[pk]
        nodes = {("o", pk) for pk in subtree} | {
            ("k", pk) for pk, k in key_results.items() if k["objective_id"] in subtree}
        read = set(nodes)
        for node in nodes:
            read.update(into[node], dependents[node])
            for down in dependents[node]:
                target = down[1] if down[0] == "o" else key_results.get(down[1], {}).get(
                    "objective_id")
                if target in objectives and target not in subtree:
                    read.add(("o", target))
            if node[0] == "k" and node in results and results[node].own in flows.BAD:
                read.add(node)
            for up in into[node]:
                if up not in nodes and bad(up):
                    read.update([p[0] for p in results[up].causes if p and p[0]] or [up])
        reads[root] = frozenset(read)
    return reads


@pytest.mark.parametrize("seed", range(6))
def test_what_each_impact_read_is_what_the_rules_read(seed):
    """Random trees with extra parents, weights of 0, dependencies between any nodes, causes
    named through dependencies: what each root's impact keeps as read (the next run computes
    a root again when a change reaches it) is what the rules read, no node more or less."""
    rng = random.Random(seed)
    n = 200
    objectives = {pk: {"parent_id": rng.randrange(1, pk) if pk > 1 and rng.random() < 0.9
                       else None, "team_id": rng.randrange(1, 9), "title": f"G{pk % 30}",
                       "kind": rng.choice(("company", "department", "team", "team")),
                       "team": f"T{rng.randrange(9)}"} for pk in range(1, n + 1)}
    key_results = {pk: {"objective_id": rng.randrange(1, n + 10),
                        "weight": rng.choice(("1", "2", "0.3", "0"))}
                   for pk in range(1, 3 * n)}
    extra = [(child, rng.randrange(1, child), 0.3) for child in rng.sample(range(2, n), 15)]
    nodes = [*(("o", pk) for pk in objectives), *(("k", pk) for pk in key_results)]
    dependencies = [tuple(rng.sample(nodes, 2)) for _ in range(60)]
    healths = (ON_TRACK, ON_TRACK, None, AT_RISK, OFF_TRACK)
    results = {}
    for node in nodes:
        effective = rng.choice(healths)
        causes = ((rng.choice(nodes), node),) if effective in flows.BAD and \
            rng.random() < 0.5 else ()
        results[node] = Result(rng.choice(healths), effective, causes)
    kept = {}
    got = flows.impacts(objectives, key_results, dependencies, results, {},
                        lambda node: {"id": node[1]}, extra, kept=kept)
    reads = _reference_reads(objectives, key_results, dependencies, results, extra)
    assert list(kept) == list(got) == list(reads)
    assert {root: read for root, (read, _) in kept.items()} == reads


@pytest.mark.parametrize("seed", range(6))
def test_the_risk_above_an_objective_of_one_parent_is_the_nearest_above_it(seed):
    """Without extra parents: each objective carries the nearest company or department
    objective above it that is at risk or off track, walking up its parents."""
    rng = random.Random(seed)
    objectives = {pk: {"parent_id": rng.randrange(0, pk) if pk > 1 else None,
                       "level": 0, "kind": rng.choice(("company", "department", "team")),
                       "title": f"G{pk}", "team": f"T{pk % 7}"} for pk in range(1, 300)}
    for pk in sorted(objectives):  # a level below its parent's
        parent = objectives[pk]["parent_id"]
        if parent in objectives:
            objectives[pk]["level"] = objectives[parent]["level"] + 1
    effective = {pk: rng.choice((ON_TRACK, AT_RISK, OFF_TRACK, None)) for pk in objectives}
    expected = {}
    for pk in objectives:
        parent = objectives[pk]["parent_id"]
        while parent in objectives:
            p = objectives[parent]
            if p["kind"] in flows.UPPER_KINDS and effective[parent] in flows.BAD:
                expected[pk] = {"id": parent, "title": p["title"], "team": p["team"],
                                "health": effective[parent]}
                break
            parent = p["parent_id"]
    got = flows.risk_above(objectives, effective)
    assert got == expected and len(got) > 50
