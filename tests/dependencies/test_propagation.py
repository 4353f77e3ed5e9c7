"""The propagation rules on plain graphs: no database."""

import pytest

from dependencies.propagation import (
    AT_RISK,
    BROKEN,
    DEPENDENCY_REASON,
    DEPENDS,
    GAP,
    OFF_TRACK,
    ON_TRACK,
    OWN,
    ROLLUP_REASON,
    Edge,
    propagate,
    rollup_health,
    transitions,
)


def dep(src, dst):
    return Edge(src, dst, DEPENDS)


def up(src, dst, weight=1.0):
    return Edge(src, dst)


def test_chain_through_a_dependency_and_up_the_tree():
    # Engineering KR "SSO" is off track; Sales KR "deals" depends on it; "deals" is the only KR
    # of the company objective "ARR".
    own = {"sso": OFF_TRACK, "deals": ON_TRACK, "arr": ON_TRACK}
    r = propagate(own, [dep("sso", "deals"), up("deals", "arr")])
    assert r["deals"].effective == AT_RISK  # upstream off track makes a dependent at risk only
    assert r["deals"].causes == (("sso",),)
    assert r["arr"].effective == AT_RISK
    assert r["arr"].causes == (("sso", "deals"),)
    assert r["sso"].effective == OFF_TRACK and r["sso"].causes == ()


def test_an_off_track_upstream_never_makes_a_dependent_off_track():
    r = propagate({"a": OFF_TRACK, "b": ON_TRACK}, [dep("a", "b")])
    assert r["b"].effective == AT_RISK


def test_own_health_worse_than_upstream_stays_and_is_not_blamed_on_others():
    r = propagate({"a": AT_RISK, "b": OFF_TRACK}, [dep("a", "b")])
    assert r["b"].effective == OFF_TRACK
    assert r["b"].causes == ()
    assert not r["b"].is_upstream_caused


def test_roll_up_averages_like_key_results():
    # One of four parts at risk: (1 + 1 + 1 + 0.5) / 4 = 0.875, still on track.
    own = {"k1": ON_TRACK, "k2": ON_TRACK, "k3": ON_TRACK, "k4": AT_RISK, "o": ON_TRACK}
    r = propagate(own, [up(k, "o") for k in ("k1", "k2", "k3", "k4")])
    assert r["o"].effective == ON_TRACK
    # Two of three off track: 1/3, off track.
    own = {"k1": ON_TRACK, "k2": OFF_TRACK, "k3": OFF_TRACK, "o": None}
    r = propagate(own, [up(k, "o") for k in ("k1", "k2", "k3")])
    assert r["o"].effective == OFF_TRACK
    assert {p[0] for p in r["o"].causes} == {"k2", "k3"}


def test_roll_up_uses_weights():
    assert rollup_health([(OFF_TRACK, 1.0), (ON_TRACK, 3.0)]) == ON_TRACK
    assert rollup_health([(OFF_TRACK, 3.0), (ON_TRACK, 1.0)]) == OFF_TRACK
    assert rollup_health([(None, 1.0)]) is None


def test_diamond_reports_the_root_cause_once():
    #      root
    #     /    \
    #    a      b
    #     \    /
    #      sink
    own = {"root": OFF_TRACK, "a": ON_TRACK, "b": ON_TRACK, "sink": ON_TRACK}
    r = propagate(own, [dep("root", "a"), dep("root", "b"), dep("a", "sink"), dep("b", "sink")])
    assert r["sink"].effective == AT_RISK
    assert len(r["sink"].causes) == 1
    assert r["sink"].causes[0][0] == "root"


def test_several_root_causes_are_all_named_worst_first():
    own = {"x": AT_RISK, "y": OFF_TRACK, "z": ON_TRACK}
    r = propagate(own, [dep("x", "z"), dep("y", "z")])
    assert r["z"].effective == AT_RISK
    assert r["z"].causes == (("y",), ("x",))


def test_a_shared_key_result_fed_by_an_off_track_contributor():
    own = {"eng": OFF_TRACK, "sales": ON_TRACK, "shared": ON_TRACK, "obj": ON_TRACK}
    edges = [up("eng", "shared"), up("sales", "shared"), up("shared", "obj")]
    r = propagate(own, edges)
    # (0 + 1) / 2 = 0.5: the shared KR is at risk, because of the Engineering contributor.
    assert r["shared"].effective == AT_RISK
    assert r["shared"].causes == (("eng",),)
    assert r["obj"].effective == AT_RISK
    assert r["obj"].causes == (("eng", "shared"),)


def test_recovery_clears_the_causes_and_raises_a_recovered_alert():
    edges = [dep("a", "b")]
    before = propagate({"a": OFF_TRACK, "b": ON_TRACK}, edges)
    after = propagate({"a": ON_TRACK, "b": ON_TRACK}, edges)
    assert after["b"].effective == ON_TRACK and after["b"].causes == ()
    snap = lambda rs: {n: (x.effective, x.is_upstream_caused) for n, x in rs.items()}  # noqa: E731
    assert transitions(snap(before), snap(after)) == [("b", "recovered")]
    assert transitions({}, snap(before)) == [("b", "worse")]
    # Nothing changed: nothing to say.
    assert transitions(snap(before), snap(before)) == []


def test_retired_upstream_node_no_longer_counts():
    # A retired objective is left out of the nodes; edges that name it are ignored.
    r = propagate({"b": ON_TRACK}, [dep("retired", "b")])
    assert r["b"].effective == ON_TRACK and r["b"].causes == ()


def test_broken_dependency_counts_as_off_track_upstream():
    r = propagate({"a": ON_TRACK, "b": ON_TRACK}, [Edge("a", "b", BROKEN)])
    assert r["b"].effective == AT_RISK
    assert r["b"].causes == (("a",),)


def test_unknown_own_health_takes_the_roll_up():
    r = propagate({"k": AT_RISK, "o": None}, [up("k", "o")])
    assert r["o"].effective == AT_RISK


def test_causes_are_capped():
    own = {f"u{i}": OFF_TRACK for i in range(10)} | {"d": ON_TRACK}
    r = propagate(own, [dep(f"u{i}", "d") for i in range(10)])
    assert len(r["d"].causes) == 3


def test_a_loop_is_refused():
    with pytest.raises(ValueError, match="loop"):
        propagate({"a": ON_TRACK, "b": ON_TRACK}, [dep("a", "b"), dep("b", "a")])


def test_a_long_chain_keeps_the_root_cause_and_the_last_hops():
    n = 2000
    own = {i: ON_TRACK for i in range(n)}
    own[0] = OFF_TRACK
    r = propagate(own, [dep(i, i + 1) for i in range(n - 1)])
    assert r[n - 1].effective == AT_RISK
    assert r[n - 1].causes[0] == (0, GAP, *range(n - 9, n - 1))
    assert r[5].causes[0] == (0, 1, 2, 3, 4)


def own_kr(src, dst, weight=1.0):
    return Edge(src, dst, OWN, weight)


def test_an_upstream_slip_reaching_a_node_twice_makes_it_at_risk_not_off_track():
    # The demo's Sales objective: its own KRs "deals" (on track, depends on SSO) and "size" (at
    # risk), and Engineering's KR "sso" on it. SSO slips: once through the roll-up of "sso",
    # once through the dependency of "deals". Before, the roll-up counted it twice: off track.
    own = {"sso": OFF_TRACK, "deals": ON_TRACK, "size": AT_RISK, "sales": ON_TRACK}
    edges = [dep("sso", "deals"), own_kr("deals", "sales"), own_kr("size", "sales"),
             up("sso", "sales")]
    r = propagate(own, edges)
    assert r["deals"].effective == AT_RISK and r["deals"].base == ON_TRACK
    assert r["sales"].effective == AT_RISK
    # SSO is named, through the roll-up and through the dependency; Sales' own KR is not.
    assert r["sales"].causes == (("sso",), ("sso", "deals"))
    assert r["sales"].reasons == (ROLLUP_REASON, DEPENDENCY_REASON)


def test_a_key_result_of_its_own_team_is_never_named_as_a_root_cause():
    own = {"size": OFF_TRACK, "other": OFF_TRACK, "sales": AT_RISK}
    r = propagate(own, [own_kr("size", "sales"), up("other", "sales")])
    assert r["sales"].effective == OFF_TRACK
    assert r["sales"].causes == (("other",),) and r["sales"].reasons == (ROLLUP_REASON,)


def test_what_dependencies_add_to_a_roll_up_is_at_most_at_risk():
    # Two KRs, each at risk only because of an off-track dependency: the objective is at risk.
    own = {"u1": OFF_TRACK, "u2": OFF_TRACK, "a": ON_TRACK, "b": ON_TRACK, "o": ON_TRACK}
    r = propagate(own, [dep("u1", "a"), dep("u2", "b"), own_kr("a", "o"), own_kr("b", "o")])
    assert r["o"].effective == AT_RISK
    assert {p[0] for p in r["o"].causes} == {"u1", "u2"}
    assert set(r["o"].reasons) == {DEPENDENCY_REASON}


# The one-pass propagate agrees with the plain definition on generated networks ----------------


def reference_propagate(own, edges):
    """The rules as first written: graphlib's order, then each node from its inputs."""
    from graphlib import TopologicalSorter

    from dependencies.propagation import (
        MAX_CAUSES,
        ROLLUPS,
        SEVERITY,
        Result,
        _causes,
        worst,
    )

    edges = [e for e in edges if e.src in own and e.dst in own]
    inputs, graph = {n: [] for n in own}, {n: set() for n in own}
    for e in edges:
        inputs[e.dst].append(e)
        graph[e.dst].add(e.src)
    results = {}
    for node in TopologicalSorter(graph).static_order():
        base_parts, parts, pulled, dependency = [], [], [], None
        for e in inputs[node]:
            src = results[e.src]
            if e.kind in ROLLUPS:
                base_parts.append((src.base, e.weight))
                parts.append((src.effective, e.weight))
                if SEVERITY[src.effective] >= SEVERITY[AT_RISK]:
                    pulled.append((src.effective, e))
            else:
                upstream = OFF_TRACK if e.kind == BROKEN else src.effective
                if SEVERITY[upstream] >= SEVERITY[AT_RISK]:
                    pulled.append((upstream, e))
                    dependency = AT_RISK
        rolled_base, rolled = rollup_health(base_parts), rollup_health(parts)
        if SEVERITY[rolled] > SEVERITY[rolled_base]:
            dependency = AT_RISK
        base = worst(own[node], rolled_base) if inputs[node] else own[node]
        effective = worst(base, dependency)
        causes, reasons = ((_causes(pulled, results, MAX_CAUSES))
                           if SEVERITY[effective] > SEVERITY[own[node]] else ((), ()))
        results[node] = Result(own[node], effective, causes, base, reasons)
    return {n: tuple(r) for n, r in results.items()}


@pytest.mark.parametrize("seed", range(6))
def test_propagate_agrees_with_the_plain_definition_on_a_generated_network(seed):
    import random

    rng = random.Random(seed)
    nodes = [("k" if i % 3 else "o", i) for i in range(1500)]
    own = {n: rng.choice([None, ON_TRACK, ON_TRACK, ON_TRACK, AT_RISK, OFF_TRACK])
           for n in nodes}
    edges = []
    for _ in range(2200):  # from a lower index to a higher one: never a loop
        a, b = sorted(rng.sample(range(len(nodes)), 2))
        kind = rng.choice(["rollup", "rollup", OWN, DEPENDS, BROKEN])
        edges.append(Edge(nodes[a], nodes[b], kind, rng.choice([1.0, 0.3, 2.5, 0.0, 1.0])))
    edges += edges[:50]  # the same edge twice counts twice, as before
    edges.append(Edge(("k", -1), nodes[0]))  # a node that is not in the network: ignored
    got = propagate(own, edges)
    assert {n: tuple(r) for n, r in got.items()} == reference_propagate(own, edges)
    assert sum(1 for r in got.values() if r.causes) > 100  # the paths were compared too


def test_a_loop_is_still_refused_even_from_a_generator_of_edges():
    with pytest.raises(ValueError, match="loop"):
        propagate({"a": ON_TRACK, "b": ON_TRACK, "c": ON_TRACK},
                  (e for e in [Edge("a", "b"), Edge("b", "c"), Edge("c", "b")]))
