"""Nodes that come and go (a new objective or key result, one retired or deleted) are
computed from the kept graph (``propagation.repropagate``): the new nodes placed first, the
gone ones taken out with their edges, and only what they reach computed again. Each run must
give what a full propagation gives, and store what a run from scratch stores."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection  # noqa: F401 (named by the skip condition)
from django_scopes import scope

from dependencies import generate, network, propagation
from dependencies.propagation import BROKEN, DEPENDS, OWN, ROLLUP, Edge
from okrs.models import KeyResult, Objective
from orgs.models import Team
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import (
    HEALTHS,
    _check_in,
    _delete_key_result,
    _delete_objective,
    _extra_parent,
    _move_key_result,
    _move_parent,
    _new_dependency,
    _new_key_result,
    _new_objective,
    _objectives,
    _random_network,
    _reachable,
    _retire,
    _unretire,
    at,
    counted,  # noqa: F401 (a fixture, used by name)
    run,
    run_from_scratch_stores,
)

pytestmark = pytest.mark.django_db

def clock():
    """Today at 9:00 plus some minutes, the day taken once: a test that runs across midnight
    keeps its day (the share of the cycle gone would move between its runs)."""
    day = at()
    return lambda minutes=0: day + timedelta(minutes=minutes)


postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="row versions (xmin, ctid) are PostgreSQL's; elsewhere every row is read on every run")


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



def built_with_upper_risks(r, seed, rng):
    """A generated network of 240 objectives, some of its company and department objectives at
    risk: flows above and impacts are computed too."""
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 240, seed=seed)
        for k in KeyResult.objects.filter(objective__cycle=r.cycle,
                                          objective__team__kind__in=("company", "department")):
            KeyResult.objects.filter(pk=k.pk).update(confidence=rng.choice(HEALTHS[1:]))

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

    def counting(mine, ins, results, plain, max_causes):
        computed.append(ins[0].dst)
        return result(mine, ins, results, plain, max_causes)

    propagation._result = counting
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


# Changes that add or take away nodes, by plain writes and through the models (a new
# objective's tree insert), mixed with the others that move edges.


def _new_objectives_with_key_results(r, rng):
    for _ in range(rng.choice((1, 2))):
        _new_objective(r, rng)


def _new_root_objective(r, rng):
    """A company objective of its own (a new tree): a node with no parent."""
    team = rng.choice(_objectives(r)).team
    o = Objective.objects.create(organization=r.org, cycle=r.cycle, team=team,
                                 title="A new company goal", state="published",
                                 effective_health="", risk_causes=[])
    KeyResult.objects.create(
        organization=r.org, objective=o, title="Open two offices", owner_team=team,
        start_value=Decimal(0), target_value=Decimal(2), current_value=Decimal(0),
        confidence=rng.choice(HEALTHS[1:]), effective_health="", risk_causes=[])


def _new_child_under_a_new_objective(r, rng):
    """A new objective under another new one, each with a key result: edges among new nodes."""
    _new_objective(r, rng)
    newest = Objective.objects.for_org(r.org).filter(cycle=r.cycle).order_by("-pk").first()
    child = Objective.objects.create(organization=r.org, cycle=r.cycle, team=newest.team,
                                     parent=newest, title="Ship the pilot",
                                     state="published", effective_health="", risk_causes=[])
    KeyResult.objects.create(
        organization=r.org, objective=child, title="Three pilot customers live",
        owner_team=newest.team, start_value=Decimal(0), target_value=Decimal(3),
        current_value=Decimal(rng.randint(0, 3)), confidence=rng.choice(HEALTHS[1:]),
        effective_health="", risk_causes=[])


def _key_result_feeds_a_new_one(r, rng):
    """A new shared key result that an old key result feeds: an edge from a kept node into a
    new one (against the order the new node is placed in)."""
    o = rng.choice(_objectives(r, state="published"))
    shared = KeyResult.objects.create(
        organization=r.org, objective=o, title="Shared revenue", owner_team=o.team,
        start_value=Decimal(0), target_value=Decimal(100), current_value=Decimal(0),
        confidence=rng.choice(HEALTHS[1:]), rollup="sum", effective_health="", risk_causes=[])
    feeder = rng.choice(list(KeyResult.objects.for_org(r.org).filter(
        objective__cycle=r.cycle, objective__state="published", feeds__isnull=True,
        kind="numeric").exclude(pk=shared.pk)))
    KeyResult.objects.filter(pk=feeder.pk).update(feeds=shared)


def _retire_a_parent(r, rng):
    """An objective with children retired: its children lose their parent edge."""
    parents = [o for o in _objectives(r, state="published", parent__isnull=False)
               if Objective.objects.filter(parent=o, state="published").exists()]
    if parents:
        Objective.objects.filter(pk=rng.choice(parents).pk).update(state="retired")


NODE_CHANGES = (_new_objective, _new_objectives_with_key_results, _new_root_objective,
                _new_child_under_a_new_objective, _key_result_feeds_a_new_one, _new_key_result,
                _delete_key_result, _delete_objective, _retire, _retire_a_parent, _unretire)
EDGE_CHANGES = (_check_in, _move_parent, _move_key_result, _extra_parent, _new_dependency)


@pytest.mark.parametrize("seed", [7, 8])
def test_new_and_gone_nodes_are_computed_from_the_kept_graph(
        revenue, counted, monkeypatch, seed):  # noqa: F811
    """Objectives and key results new, deleted, retired and back, by plain writes, with
    edges moving between: every run is computed from the graph the last run kept (none in
    full), and a run from scratch after it changes nothing and stores the same row by row;
    a run from what the run from scratch kept stores the same again. (On a network this
    small, an objective retired with its children is more than the 5% of edges above which
    a full run is cheaper: the share is raised so that every change goes through the kept
    graph.)"""
    monkeypatch.setattr(propagation, "RESHAPE_UP_TO", 0.25)
    r, when = revenue, clock()
    rng = random.Random(seed)
    built_with_upper_risks(r, seed, rng)
    network.forget()
    run(r, when())
    steps = [*NODE_CHANGES, *rng.choices([*NODE_CHANGES, *EDGE_CHANGES], k=8)]
    rng.shuffle(steps)
    computed = 0
    for step, change in enumerate(steps):
        with scope(organization=r.org):
            change(r, rng)
        now = when(minutes=2 * step + 1)
        computed += not run(r, now).skipped
        after = stored(r)
        run_from_scratch_stores(r, now, after, change.__name__)
        run(r, when(minutes=2 * step + 2))  # from what the run from scratch kept
        assert stored(r) == after, change.__name__
    assert counted["full propagation"] == 0, counted
    assert counted["incremental propagation"] >= computed >= len(steps) - 3, counted


def test_a_row_read_again_is_the_kept_row_only_when_every_column_read_is_the_same():
    row = {"id": 1, "title": "Grow", "weight": Decimal("1.00"), "risk_above": {"a": 1},
           "is_done": False, "row_version": "10/(0,1)"}
    assert network._same_row(row, {**row, "row_version": "11/(0,2)"})
    assert network._same_row(row, {**row, "title": "Gro" + "w"})  # equal, another object
    for column, value in (("title", "Grow more"), ("weight", Decimal("1.0")),
                          ("weight", Decimal("2.00")), ("risk_above", {"a": 1.0}),
                          ("risk_above", {"a": True}), ("is_done", 0), ("is_done", None)):
        assert not network._same_row(row, {**row, column: value}), (column, value)
    assert not network._same_row(row, {k: v for k, v in row.items() if k != "title"})


@postgresql_only
def test_a_new_objective_s_tree_insert_reads_rows_again_but_keeps_them(
        revenue, counted):  # noqa: F811
    """The tree insert of a new objective rewrites ``lft``/``rght`` of the objectives after it
    in its tree: their versions move, their hashes of the columns the network reads do not, so
    the network does not read them again and keeps the kept rows (the very objects, with the
    new versions): nothing downstream counts them as moved. A row whose read column changed
    with it is read and not kept."""
    r, when = revenue, clock()
    rng = random.Random(11)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 240, seed=11)
    network.forget()
    run(r, when())
    run(r, when())  # reads the rows the first run wrote: then the rows kept are the table's
    before = network.kept_rows(r.cycle.pk).objectives
    with scope(organization=r.org):
        # Under the first child of the largest tree's root: the insert moves the rest of it.
        root = max(Objective.objects.for_org(r.org).filter(cycle=r.cycle, parent__isnull=True),
                   key=lambda o: (o.rght - o.lft, -o.pk))
        parent = Objective.objects.for_org(r.org).filter(parent=root).order_by("lft").first()
        titled = Objective.objects.for_org(r.org).filter(
            tree_id=root.tree_id, lft__gt=parent.rght).order_by("lft").last()
        new = Objective.objects.create(organization=r.org, cycle=r.cycle, team=parent.team,
                                       parent=parent, title="New goal", state="published",
                                       effective_health="", risk_causes=[])
        Objective.objects.filter(pk=titled.pk).update(title="Renamed in the same change")
        shifted = set(Objective.objects.for_org(r.org).filter(
            tree_id=root.tree_id, rght__gt=new.lft).exclude(pk=new.pk).values_list(
                "pk", flat=True))
    moved = shifted - {titled.pk}
    assert len(moved) >= 5
    written, reads = set(), []
    write, write_flows, as_kept = network._write, network._write_flows, network._as_kept

    def counted_write(changed_o, changed_k, rolled_values):
        written.update(row["id"] for row in changed_o)
        return write(changed_o, changed_k, rolled_values)

    def counted_write_flows(rows):
        written.update(row["id"] for row in rows)
        return write_flows(rows)

    network._write, network._write_flows = counted_write, counted_write_flows

    def objectives_read(kept, fresh):
        if any("parent_id" in row for row in fresh.values()):  # objectives, not key results
            reads.append(set(fresh))
        return as_kept(kept, fresh)

    network._as_kept = objectives_read
    try:
        run(r, when(minutes=1))
        after = network.kept_rows(r.cycle.pk).objectives
        assert reads[0] == {new.pk, titled.pk}, "not read again: only their versions moved"
        assert all(after[pk] is before[pk] for pk in moved), "and kept as they were"
        assert after[titled.pk] is not before[titled.pk]
        assert after[titled.pk]["title"] == "Renamed in the same change"
        # Their versions are now the rows' own: the next run reads again only the objectives
        # the last run wrote.
        reads.clear()
        with scope(organization=r.org):
            _check_in(r, rng)
        run(r, when(minutes=2))
    finally:
        network._write, network._write_flows = write, write_flows
        network._as_kept = as_kept
    assert not reads or reads[0] <= written, (reads, written)
    assert counted["full propagation"] == 0, counted
    run_from_scratch_stores(r, when(minutes=2), stored(r), "tree insert")


@postgresql_only
def test_a_new_team_reads_every_row_again_and_keeps_them_all(revenue, counted):  # noqa: F811
    """A new team's tree insert moves the versions of the teams after it (whose names, leads
    and kinds the rows carry): every row is read again, and each one the same in every
    column the run reads stays the kept row. A renamed team's rows are not kept."""
    r, when = revenue, clock()
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 240, seed=12)
    network.forget()
    run(r, when())
    run(r, when())  # reads the rows the first run wrote: then the rows kept are the table's
    before = network.kept_rows(r.cycle.pk)
    with scope(organization=r.org):
        company = Team.objects.for_org(r.org).filter(parent__isnull=True).order_by("pk").first()
        Team.objects.create(organization=r.org, name="A new team", parent=company)
        renamed = Objective.objects.for_org(r.org).filter(cycle=r.cycle).order_by("pk")[3].team
        Team.objects.filter(pk=renamed.pk).update(name="Renamed team")
    run(r, when(minutes=1))
    after = network.kept_rows(r.cycle.pk)
    assert after.teams != before.teams
    for table in ("objectives", "key_results"):
        old, new = getattr(before, table), getattr(after, table)
        team = "team_id" if table == "objectives" else "owner_team_id"
        assert all(new[pk] is row for pk, row in old.items() if row[team] != renamed.pk), table
        assert all(new[pk] is not row for pk, row in old.items() if row[team] == renamed.pk)
    run_from_scratch_stores(r, when(minutes=1), stored(r), "new team")
