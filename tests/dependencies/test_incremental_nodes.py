"""Nodes that come and go (a new objective or key result, one retired or deleted) are
computed from the kept graph (``propagation.repropagate``): the new nodes placed first, the
gone ones taken out with their edges, and only what they reach computed again. Each run must
give what a full propagation gives, and store what a run from scratch stores."""

import random

import pytest

from dependencies import propagation
from dependencies.propagation import BROKEN, DEPENDS, OWN, ROLLUP, Edge
from tests.dependencies.test_incremental import HEALTHS, _random_network, _reachable


def _assert_same_as_a_full_run(new, own, edges):
    full = propagation.propagate_graph(own, edges)
    assert new.results == full.results
    assert new.inputs == full.inputs
    assert {n: sorted(d) for n, d in new.outputs.items()} == {
        n: sorted(d) for n, d in full.outputs.items()}
    # The places are a topological order of the nodes, without holes, and the results follow it.
    assert new.place.keys() == own.keys()
    assert all(new.place[e.src] < new.place[e.dst] for e in edges
               if e.src in own and e.dst in own)
    assert sorted(new.place.values()) == list(range(len(own)))
    assert [new.place[n] for n in new.results] == list(range(len(own)))


def _new_edge(rng, nodes, edges, *, src=None, dst=None):
    """An edge that closes no loop, with ``src`` or ``dst`` given or chosen."""
    for _ in range(100):
        a = src if src is not None else rng.choice(nodes)
        b = dst if dst is not None else rng.choice(nodes)
        if a != b and a not in _reachable(edges, b):
            return Edge(a, b, rng.choice((ROLLUP, OWN, DEPENDS, BROKEN)),
                        float(rng.choice((1, 2))))
    return None


@pytest.mark.parametrize("seed", range(8))
def test_nodes_that_come_and_go_are_computed_from_the_kept_graph(seed):
    """Random rounds of nodes gone (with their edges, or with some edges left naming them),
    nodes new (with edges into and out of kept nodes and each other, anywhere in the list),
    own healths, edges removed and added and kinds changed at once; each graph is the start
    of the next round."""
    rng = random.Random(seed)
    own, edges = _random_network(rng, 1000)
    graph = propagation.propagate_graph(own, edges)
    computed, fresh_id = 0, 10_000
    for _ in range(14):
        own = dict(own)
        edges = [e for e in edges if e.src in own and e.dst in own]
        nodes = list(own)
        # Nodes that go: their edges go too, but sometimes one is left naming them (ignored).
        for node in rng.sample(nodes, rng.choice((0, 1, 1, 3, 8))):
            del own[node]
        kept_outsider = rng.random() < 0.2
        edges = [e for e in edges if (e.src in own and e.dst in own)
                 or (kept_outsider and rng.random() < 0.05)]
        nodes = list(own)
        # Nodes that come, with edges among them and to and from the kept nodes.
        new_nodes = []
        for _ in range(rng.choice((0, 1, 2, 2, 5))):
            fresh_id += 1
            node = (rng.choice("ok"), fresh_id)
            own[node] = rng.choice(HEALTHS)
            new_nodes.append(node)
        for node in new_nodes:
            for _ in range(rng.choice((0, 1, 2, 3))):
                other = rng.choice([*nodes, *new_nodes])
                e = _new_edge(rng, [], edges, **(
                    {"src": node, "dst": other} if rng.random() < 0.6
                    else {"src": other, "dst": node}))
                if e is not None:
                    edges.insert(rng.randrange(len(edges) + 1), e)
        nodes = list(own)
        for node in rng.sample(nodes, rng.choice((0, 1, 5))):
            own[node] = rng.choice(HEALTHS)
        for _ in range(rng.choice((0, 1, 2))):
            if rng.random() < 0.5 and edges:
                del edges[rng.randrange(len(edges))]
            else:
                e = _new_edge(rng, nodes, edges)
                if e is not None:
                    edges.insert(rng.randrange(len(edges) + 1), e)
        if rng.random() < 0.3 and edges:
            i = rng.randrange(len(edges))
            edges[i] = edges[i]._replace(kind=rng.choice((ROLLUP, DEPENDS, BROKEN)))
        new = propagation.repropagate(graph, own, edges)
        if new is None:
            graph = propagation.propagate_graph(own, edges)
            continue
        computed += 1
        _assert_same_as_a_full_run(new, own, edges)
        graph = new
    assert computed >= 9, computed


def test_a_new_objective_with_a_key_result_moves_no_node_and_computes_what_it_reaches():
    """The common case: a new key result into a new objective into a kept parent. New nodes
    are placed first, so no kept node moves; only the new nodes and what their results reach
    are computed again."""
    rng = random.Random(3)
    own, edges = _random_network(rng, 1000)
    graph = propagation.propagate_graph(own, edges)
    parent = next(n for n in own if n[0] == "o")
    kr, objective = ("k", 50_000), ("o", 50_000)
    own2 = {**own, kr: "off_track", objective: None}
    edges2 = [*edges, Edge(kr, objective, OWN), Edge(objective, parent, ROLLUP)]
    computed = []
    result = propagation._result

    def counted(mine, ins, results, plain, max_causes):
        computed.append(ins[0].dst)
        return result(mine, ins, results, plain, max_causes)

    propagation._result = counted
    try:
        new = propagation.repropagate(graph, own2, edges2)
    finally:
        propagation._result = result
    assert new is not None
    _assert_same_as_a_full_run(new, own2, edges2)
    # The kept nodes keep their order, after the two new ones.
    assert list(new.results)[2:] == list(graph.results)
    assert objective in computed and len(computed) <= 1 + len(_reachable(edges2, parent))
    # And it goes again: the kept order is what it was.
    back = propagation.repropagate(new, own, edges)
    _assert_same_as_a_full_run(back, own, edges)
    assert list(back.results) == list(graph.results)


def test_a_new_node_against_the_order_and_a_loop_through_a_new_node():
    rng = random.Random(4)
    own, edges = _random_network(rng, 400)
    graph = propagation.propagate_graph(own, edges)
    new = ("o", 90_000)
    # A kept node into the new one (placed first: against the order), and the new one into
    # another kept node that does not reach the first: nodes move.
    src = list(graph.results)[-1]
    dst = next(n for n in graph.results if n != src and src not in _reachable(edges, n))
    into = [*edges, Edge(src, new, ROLLUP), Edge(new, dst, DEPENDS)]
    own2 = {**own, new: "at_risk"}
    got = propagation.repropagate(graph, own2, into)
    assert got is not None
    _assert_same_as_a_full_run(got, own2, into)
    # Through the new node, a loop: declined, and the full run names it.
    e = next(e for e in edges if e.src != e.dst)
    loop = [*edges, Edge(e.dst, new, ROLLUP), Edge(new, e.src, ROLLUP)]
    assert propagation.repropagate(graph, own2, loop) is None
    with pytest.raises(ValueError, match="loop"):
        propagation.propagate(own2, loop)


def test_repropagate_declines_too_many_new_or_gone_nodes_and_edges_it_ignored():
    rng = random.Random(5)
    own, edges = _random_network(rng, 400)
    graph = propagation.propagate_graph(own, edges)
    many = {**own, **{("k", 70_000 + i): None for i in range(40)}}
    assert propagation.repropagate(graph, many, edges) is None
    # A kept graph whose edges named a node it did not have: that edge is now in, declined.
    ghost = ("o", 80_000)
    first = next(iter(own))
    with_ghost = [*edges, Edge(ghost, first, ROLLUP)]
    graph = propagation.propagate_graph(own, with_ghost)
    own2 = {**own, ghost: "off_track"}
    assert propagation.repropagate(graph, own2, with_ghost) is None
    full = propagation.propagate(own2, with_ghost)
    assert full[first] == propagation.propagate_graph(own2, with_ghost).results[first]
