"""The full propagation and the impacts take shortcuts for the common case (a node whose parts
are all on track or unknown; an objective's parts made once for every root that reaches it).
Each is held here to a plain computation of the same rules on random networks: the results
must be equal to the last bit, causes and their order included."""

import random
from collections import defaultdict
from decimal import Decimal
from graphlib import TopologicalSorter

import pytest

from dependencies import flows, propagation
from dependencies.propagation import (
    AT_RISK,
    BROKEN,
    DEPENDS,
    OFF_TRACK,
    ON_TRACK,
    OWN,
    ROLLUP,
    ROLLUPS,
    SEVERITY,
    Edge,
    Result,
)

# Mostly on track: the shortcut's case; the others often enough to mix with it.
HEALTHS = (ON_TRACK, ON_TRACK, ON_TRACK, ON_TRACK, None, AT_RISK, OFF_TRACK)
WEIGHTS = (1.0, 1.0, 2.0, 0.5, 1 / 3, 0.1, 0.0)


def _plain_result(mine, ins, results):
    """A node's result by the rules, step by step: both roll-ups by ``rollup_health``, what
    dependencies add, the worst of them, and the causes when it is worse than its own."""
    base_parts = [(results[e.src].base, e.weight) for e in ins if e.kind in ROLLUPS]
    parts = [(results[e.src].effective, e.weight) for e in ins if e.kind in ROLLUPS]
    pulled, dependency = [], None
    for e in ins:
        src = results[e.src]
        if e.kind in ROLLUPS:
            if SEVERITY[src.effective] >= SEVERITY[AT_RISK]:
                pulled.append((src.effective, e))
        else:
            upstream = OFF_TRACK if e.kind == BROKEN else src.effective
            if SEVERITY[upstream] >= SEVERITY[AT_RISK]:
                pulled.append((upstream, e))
                dependency = AT_RISK
    rolled_base = propagation.rollup_health(base_parts)
    rolled = propagation.rollup_health(parts)
    if SEVERITY[rolled] > SEVERITY[rolled_base]:
        dependency = AT_RISK
    base = propagation.worst(mine, rolled_base)
    effective = propagation.worst(base, dependency)
    causes, reasons = (), ()
    if SEVERITY[effective] > SEVERITY[mine]:
        causes, reasons = propagation._causes(pulled, results, propagation.MAX_CAUSES)
    return Result(mine, effective, causes, base, reasons)


def _plain_propagate(own, edges):
    inputs = defaultdict(list)
    for e in edges:
        if e.src in own and e.dst in own:
            inputs[e.dst].append(e)
    graph = {node: {e.src for e in inputs[node]} for node in own}
    results = {}
    for node in TopologicalSorter(graph).static_order():
        results[node] = (_plain_result(own[node], inputs[node], results) if inputs[node]
                         else Result(own[node], own[node], (), own[node]))
    return results, {node: ins for node, ins in inputs.items() if ins}


def _random_network(rng, n):
    """Key results into objectives, objectives into objectives placed before them, some key
    results feeding others, dependencies between any two in order, edges naming nodes that
    are not in the network, and an edge given twice."""
    objectives = [("o", i) for i in range(n // 4)]
    key_results = [("k", i) for i in range(n - len(objectives))]
    own = {node: rng.choice(HEALTHS) for node in [*key_results, *objectives]}
    nodes = [*key_results, *objectives]  # an edge goes from a lower index to a higher one
    rank = {node: i for i, node in enumerate(nodes)}
    edges = []
    for k in key_results:
        edges.append(Edge(k, rng.choice(objectives), rng.choice((OWN, OWN, ROLLUP)),
                          rng.choice(WEIGHTS)))
        if rng.random() < 0.05:
            edges.append(Edge(k, rng.choice(key_results[rank[k] + 1:] or objectives), ROLLUP))
    for i, o in enumerate(objectives[:-1]):
        if rng.random() < 0.9:
            edges.append(Edge(o, rng.choice(objectives[i + 1:]), ROLLUP, rng.choice(WEIGHTS)))
    for _ in range(n // 20):
        a, b = sorted(rng.sample(range(len(nodes)), 2))
        edges.append(Edge(nodes[a], nodes[b], rng.choice((DEPENDS, DEPENDS, BROKEN))))
    edges.append(Edge(("o", -1), objectives[0], ROLLUP))  # a node not in the network
    edges.append(Edge(key_results[0], ("o", -2), DEPENDS))
    edges.append(edges[0])
    rng.shuffle(edges)
    return own, edges


@pytest.mark.parametrize("seed", range(6))
def test_a_full_propagation_gives_what_the_rules_give_step_by_step(seed, monkeypatch):
    rng = random.Random(seed)
    own, edges = _random_network(rng, 1_500)
    worked = []
    whole = propagation._worked_result
    monkeypatch.setattr(propagation, "_worked_result",
                        lambda *args: worked.append(1) or whole(*args))
    graph = propagation.propagate_graph(own, edges)
    worked_out = len(worked)
    results, inputs = _plain_propagate(own, edges)
    assert graph.results == results
    assert graph.inputs == inputs
    assert all(graph.place[e.src] < graph.place[e.dst] for ins in inputs.values() for e in ins)
    assert [graph.place[node] for node in graph.results] == list(range(len(own)))
    assert propagation.propagate(own, edges) == results
    # Both ways were taken: the one-pass shortcut and the worked roll-up.
    assert 0 < worked_out < len(inputs)


def test_a_node_whose_known_parts_weigh_nothing_is_unknown_and_causes_stay_in_order():
    k1, k2, k3, o = ("k", 1), ("k", 2), ("k", 3), ("o", 1)
    own = {k1: ON_TRACK, k2: None, k3: OFF_TRACK, o: None}
    zero = [Edge(k1, o, OWN, 0.0), Edge(k2, o, OWN, 1.0)]
    assert propagation.propagate(own, zero)[o] == Result(None, None, (), None)
    weighs = [Edge(k1, o, OWN, 0.5), Edge(k2, o, OWN, 1.0)]
    assert propagation.propagate(own, weighs)[o] == Result(None, ON_TRACK, (), ON_TRACK)
    # An off-track part: the worked roll-up, with its cause.
    pulled = [*weighs, Edge(k3, o, ROLLUP, 1.0)]
    assert propagation.propagate(own, pulled)[o] == _plain_propagate(own, pulled)[0][o]
    assert propagation.propagate(own, pulled)[o].causes == ((k3,),)


def _reference_impacts(objectives, key_results, dependencies, results, members, describe,
                       extra_links=()):
    """``flows.impacts`` as it was written before its parts were shared between roots."""
    key_results = {pk: k for pk, k in key_results.items() if k["objective_id"] in objectives}
    children, krs_of = defaultdict(list), defaultdict(list)
    for pk, o in objectives.items():
        if o["parent_id"] in objectives:
            children[o["parent_id"]].append(pk)
    for child, parent, _ in extra_links:
        if child in objectives and parent in objectives:
            children[parent].append(child)
    for pk, k in key_results.items():
        krs_of[k["objective_id"]].append(pk)
    dependents, into = defaultdict(list), defaultdict(list)
    for up, down in dependencies:
        dependents[up].append(down)
        into[down].append(up)

    def health(node):
        r = results.get(node)
        return r.effective if r else None

    out = {}
    for root, o in objectives.items():
        if o["kind"] not in flows.UPPER_KINDS or health(("o", root)) not in flows.BAD:
            continue
        share = {("o", root): 1.0}
        below, krs, stack, seen = [], [], [root], set()
        while stack:
            pk = stack.pop()
            if pk in seen:
                continue
            seen.add(pk)
            inputs = [(("k", k), float(key_results[k]["weight"])) for k in krs_of[pk]]
            inputs += [(("o", c), 1.0) for c in children[pk]]
            total = sum(w for _, w in inputs) or 1.0
            for node, w in inputs:
                share[node] = share.get(node, 0.0) + share[("o", pk)] * w / total
            krs += krs_of[pk]
            if pk != root:
                below.append(pk)
            stack += children[pk]
        deps, downstream = 0, set()
        for node in share:
            for down in dependents[node]:
                deps += 1
                target = down[1] if down[0] == "o" else key_results.get(down[1], {}).get(
                    "objective_id")
                if target is not None and ("o", target) not in share:
                    downstream.add(target)
        affected = below + sorted(downstream)
        teams = {objectives[pk]["team_id"] for pk in [root, *affected]}
        people = set().union(*(members.get(t, ()) for t in teams))
        weights = defaultdict(float)
        for node in share:
            r = results.get(node)
            if node[0] == "k" and r and r.own in flows.BAD:
                weights[node] += share[node] * flows.BADNESS[r.own]
            for up in into[node]:
                if up in share or health(up) not in flows.BAD:
                    continue
                roots = [path[0] for path in results[up].causes if path and path[0]] or [up]
                for cause in roots:
                    weights[cause] += share[node] * flows.BADNESS[AT_RISK] / len(roots)
        ranked = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
        worst_first = sorted(affected, key=lambda pk: (
            {OFF_TRACK: 0, AT_RISK: 1}.get(health(("o", pk)), 2), objectives[pk]["title"], pk))
        out[root] = {
            "health": health(("o", root)),
            "teams": len(teams), "objectives": len(affected), "key_results": len(krs),
            "dependencies": deps, "people": len(people),
            "team_names": sorted({objectives[pk]["team"] for pk in [root, *affected]})[:5],
            "top_objectives": [describe(("o", pk)) for pk in worst_first[:5]],
            "causes": [{**describe(node), "weight": round(w * 100)} for node, w in ranked[:5]],
            "more_causes": max(0, len(ranked) - 5),
        }
    return out


@pytest.mark.parametrize("seed", range(6))
def test_impacts_give_what_each_root_computed_alone_gives(seed):
    """Random trees with extra parents, key results of weights that do not divide evenly,
    dependencies between any nodes (some onto key results of no objective listed), root
    causes named through dependencies: the impacts equal the plain computation's, and what
    each root read covers its subtree and what flows into and out of it."""
    rng = random.Random(seed)
    n = 300
    objectives = {}
    for pk in range(1, n + 1):
        objectives[pk] = {
            "parent_id": rng.randrange(1, pk) if pk > 1 and rng.random() < 0.9 else None,
            "team_id": rng.randrange(1, 12), "title": f"Goal {rng.randrange(40)}",
            "kind": rng.choice(("company", "department", "department", "team")),
            "team": f"Team {rng.randrange(12)}"}
    key_results = {pk: {"objective_id": rng.randrange(1, n + 20),  # some of no objective here
                        "weight": Decimal(rng.choice(("1", "2", "0.3", "0")))}
                   for pk in range(1, 4 * n)}
    extra = [(child, rng.randrange(1, child), rng.choice((0.3, 0.5)))
             for child in rng.sample(range(2, n + 1), 25)]
    nodes = [*(("o", pk) for pk in objectives), *(("k", pk) for pk in key_results)]
    dependencies = [tuple(rng.sample(nodes, 2)) for _ in range(80)]
    results = {}
    for node in nodes:
        effective = rng.choice(HEALTHS)
        causes = ((rng.choice(nodes), node),) if effective in (AT_RISK, OFF_TRACK) and \
            rng.random() < 0.5 else ()
        results[node] = Result(rng.choice(HEALTHS), effective, causes)
    members = {t: set(rng.sample(range(100), 5)) for t in range(1, 12)}

    def describe(node):
        return {"id": node[1], "kind": node[0]}

    kept = {}
    got = flows.impacts(objectives, key_results, dependencies, results, members, describe,
                        extra, kept=kept)
    assert got == _reference_impacts(objectives, key_results, dependencies, results, members,
                                     describe, extra)
    assert len(got) > 20
    for root, (read, impact) in kept.items():
        assert impact is got[root]
        assert ("o", root) in read
        assert all(("o", c) in read for c, o in objectives.items() if o["parent_id"] == root)


class _Untouchable(dict):
    """Key results that fail the test when read."""

    def items(self):
        raise AssertionError("the key results were read")

    def __getitem__(self, key):
        raise AssertionError("a key result was read")

    def get(self, key, default=None):
        raise AssertionError("a key result was read")


def test_impacts_that_all_hold_are_given_back_without_reading_the_key_results():
    """After a change that reaches no root (``changed`` names no node any root read), the
    impacts are the kept ones, in the roots' order, and nothing is set up again; a change that
    reaches one root computes that root again and gives the others back as they were."""
    objectives = {
        1: {"parent_id": None, "kind": "company", "team_id": 1, "title": "A", "team": "T"},
        2: {"parent_id": 1, "kind": "department", "team_id": 2, "title": "B", "team": "T"},
        3: {"parent_id": None, "kind": "department", "team_id": 3, "title": "C", "team": "T"},
        4: {"parent_id": 3, "kind": "team", "team_id": 4, "title": "D", "team": "T"},
    }
    key_results = {10: {"objective_id": 2, "weight": Decimal("1")},
                   11: {"objective_id": 4, "weight": Decimal("2")}}
    results = {("o", 1): Result(None, AT_RISK), ("o", 2): Result(None, AT_RISK),
               ("o", 3): Result(None, OFF_TRACK), ("o", 4): Result(None, OFF_TRACK),
               ("k", 10): Result(AT_RISK, AT_RISK), ("k", 11): Result(OFF_TRACK, OFF_TRACK)}

    def describe(node):
        return {"id": node[1]}

    kept = {}
    first = flows.impacts(objectives, key_results, [], results, {}, describe, kept=kept)
    assert list(first) == [1, 2, 3]
    held = dict(kept)
    again = flows.impacts(objectives, _Untouchable(key_results), [], results, {}, describe,
                          kept=kept, changed={("o", 99)})
    assert again == first and list(again) == [1, 2, 3]
    assert all(kept[root] is held[root] for root in held)
    # The key result under root 3 moved: root 3 again, roots 1 and 2 as they were.
    results[("k", 11)] = Result(AT_RISK, AT_RISK)
    moved = flows.impacts(objectives, key_results, [], results, {}, describe, kept=kept,
                          changed={("k", 11)})
    assert list(moved) == [1, 2, 3]
    assert moved[1] is first[1] and moved[2] is first[2]
    assert moved[3]["causes"] == [{"id": 11, "weight": 50}]
    assert moved == flows.impacts(objectives, key_results, [], results, {}, describe)
