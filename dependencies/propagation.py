"""At-risk propagation over one cycle's OKR network. Plain data in, plain data out: no Django.

The network's nodes are objectives and key results. An edge ``(src, dst)`` says that ``dst``
takes in ``src``'s health:

- roll-up edges: a key result into its objective, an aligned objective into its parent, a
  contributing key result into the shared key result it feeds; a key result of the objective's
  own team is an ``OWN`` roll-up edge: its own health is already in the objective's own health;
- dependency edges: what a node depends on (upstream) into the node that depends on it.

The rules, which the product repeats in words (``RULES``):

1. A node's own health comes from its check-ins and pace (``okrs.progress``).
2. Roll-up: what sits below a node is averaged the way key results are (on track 1, at risk 0.5,
   off track 0, weighted; 0.75 and above on track, 0.4 and above at risk), using their
   *effective* health, so risk that came from elsewhere travels up.
3. Dependencies: an upstream node that is at risk or off track makes the node that depends on it
   at risk, never off track: the dependent team still has its fallback. A broken dependency
   counts as an upstream off track. This holds through roll-ups too: the roll-up is taken twice,
   from the parts' health without dependencies (``base``) and with them (``effective``); what
   dependencies add on top is capped at at risk, so an upstream slip that reaches a node both
   through a key result and through a dependency is not counted twice.
4. Effective health is the worst of the three. When it is worse than the node's own health, the
   node is at risk *because of something else*, and it keeps the paths back to the root causes,
   each with its reason: ``ROLLUP_REASON`` (its key results and aligned objectives) or
   ``DEPENDENCY_REASON`` (a dependency somewhere on the path). A part of its own health (an
   ``OWN`` edge) is never named as a root cause: only what reached that part from elsewhere.

Each node and each edge is visited once, in topological order (``graphlib``).
"""

import gc
import heapq
from collections import Counter, defaultdict
from graphlib import CycleError, TopologicalSorter
from typing import NamedTuple

ON_TRACK, AT_RISK, OFF_TRACK = "on_track", "at_risk", "off_track"
SEVERITY = {None: -1, ON_TRACK: 0, AT_RISK: 1, OFF_TRACK: 2}
SCORE = {ON_TRACK: 1.0, AT_RISK: 0.5, OFF_TRACK: 0.0}

ROLLUP, DEPENDS, BROKEN, OWN = "rollup", "depends", "broken", "own"
ROLLUPS = frozenset((ROLLUP, OWN))
ROLLUP_REASON, DEPENDENCY_REASON = "rollup", "dependency"
MAX_CAUSES = 3
# A cause path longer than this keeps its root cause and its last hops, with GAP between, so a
# long chain costs each node a bounded amount of work and storage.
MAX_PATH = 10
GAP = None

RULES = (
    "A key result's own health comes from its check-ins and its pace; an objective's own health "
    "from its own team's key results. A key result with no check-in for two weeks is stale: its "
    "health is unknown and counts as unknown.",
    "What sits below a node (an objective's key results and aligned objectives, the key results "
    "that feed a shared key result) is averaged the way key results are, using their effective "
    "health, so a risk from elsewhere travels up. Each aligned objective counts like a key "
    "result of weight 1 (one with several parents: its share in each).",
    "Anything a node depends on that is at risk or off track makes it at risk, never off track: "
    "the team that depends on it still has its fallback. A broken dependency counts as off track "
    "upstream. That stays true higher up: what dependencies add to a roll-up is at most at risk.",
    "Effective health is the worst of these. When it is worse than the node's own health, the "
    "node is at risk because of something else, and the path back to the root cause is shown.",
)


# Named tuples rather than frozen dataclasses: a run makes one per edge and one per node
# (100,000s), and a tuple is made in half the time.
class Edge(NamedTuple):
    src: object
    dst: object
    kind: str = ROLLUP
    weight: float = 1.0


class Result(NamedTuple):
    own: str | None
    effective: str | None
    # Paths to the root causes, each from the root cause to the node's direct input, worst first.
    # Empty unless the node is at risk because of something else.
    causes: tuple[tuple[object, ...], ...] = ()
    # Its own health with the roll-up, without anything dependencies add (None: as effective).
    base: str | None = None
    # One per path in ``causes``: ROLLUP_REASON or DEPENDENCY_REASON.
    reasons: tuple[str, ...] = ()

    @property
    def is_upstream_caused(self):
        return bool(self.causes)


def worst(*healths):
    return max(healths, key=SEVERITY.__getitem__, default=None)


def rollup_health(parts):
    """parts: (health, weight) pairs; unknown healths are left out. None when nothing is known."""
    scored = [(SCORE[h], w) for h, w in parts if h is not None]
    total = sum(w for _, w in scored)
    if not scored or total <= 0:
        return None
    score = sum(s * w for s, w in scored) / total
    return ON_TRACK if score >= 0.75 else AT_RISK if score >= 0.4 else OFF_TRACK


def order(nodes, edges):
    """Nodes in topological order (inputs first). Raises ``graphlib.CycleError`` on a loop.

    Kahn's algorithm, in one pass over the nodes and edges; ``graphlib`` (whose ``prepare``
    searches the whole graph for a cycle first, about half the time at 100,000 nodes) only
    names the loop when there is one."""
    outputs = {node: [] for node in nodes}
    waiting = dict.fromkeys(outputs, 0)
    for e in edges:
        if e.src in outputs and e.dst in outputs:
            outputs[e.src].append(e.dst)
            waiting[e.dst] += 1
    ready = [node for node, count in waiting.items() if count == 0]
    ordered = []
    while ready:
        node = ready.pop()
        ordered.append(node)
        for dst in outputs[node]:
            waiting[dst] -= 1
            if waiting[dst] == 0:
                ready.append(dst)
    if len(ordered) < len(outputs):
        graph = {node: set() for node in outputs}
        for src, dsts in outputs.items():
            for dst in dsts:
                graph[dst].add(src)
        list(TopologicalSorter(graph).static_order())  # raises CycleError naming the loop
    return ordered


def propagate(own, edges, *, max_causes=MAX_CAUSES):
    """own: {node: health or None}. edges: iterable of ``Edge``. Returns {node: Result}.

    Edges that name a node not in ``own`` (a retired objective, say) are ignored.

    The cyclic garbage collector is paused meanwhile: the run makes one result per node and
    no reference cycles, and at 100,000 nodes the collector's passes over them cost a third of
    the time."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _propagate(own, edges, max_causes)[0]
    finally:
        if paused:
            gc.enable()


def _propagate(own, edges, max_causes):
    # Kahn's algorithm, computing each node as it comes out of the queue: its inputs are done.
    # The order within a node's inputs is the order of ``edges``, as the paths' order needs.
    inputs, outputs = _inputs_and_outputs(edges)
    if not (inputs.keys() <= own.keys() and outputs.keys() <= own.keys()):
        # Some edge names a node not in ``own`` (the network gives none): left out.
        inputs, outputs = _inputs_and_outputs(
            [e for e in edges if e.src in own and e.dst in own])
    waiting = {node: len(ins) for node, ins in inputs.items()}
    ready = [node for node in own if node not in inputs]
    results = {}
    plain, alone = _PLAIN, _ALONE
    input_of, output_of, pop, push = inputs.get, outputs.get, ready.pop, ready.append
    while ready:
        node = pop()
        outs = output_of(node)
        if outs is not None:
            for dst in outs:
                left = waiting[dst] - 1
                waiting[dst] = left
                if not left:
                    push(dst)
        mine = own[node]
        ins = input_of(node)
        if ins is None:  # most key results: nothing flows in, effective is own
            results[node] = alone.get(mine) or Result(mine, mine, (), mine)
        else:
            results[node] = _result(mine, ins, results, plain, max_causes)
    if len(results) < len(own):  # the loop check refuses loops; this is the last line of defence
        try:
            order(own, [e for ins in inputs.values() for e in ins])  # names the loop
        except CycleError as exc:
            raise ValueError(f"The network has a loop: {exc.args[1]}") from exc
    return results, inputs, outputs


def _inputs_and_outputs(edges):
    """Each node's input edges and output nodes, in the order of ``edges``."""
    inputs, outputs = {}, {}
    input_of, output_of = inputs.get, outputs.get
    for e in edges:
        src, dst = e.src, e.dst
        ins = input_of(dst)
        if ins is None:
            inputs[dst] = [e]
        else:
            ins.append(e)
        outs = output_of(src)
        if outs is None:
            outputs[src] = [dst]
        else:
            outs.append(dst)
    return inputs, outputs


# A result without causes is one of a few values: made once and shared (they are immutable).
_PLAIN = {(a, b, c): Result(a, b, (), c) for a in SEVERITY for b in SEVERITY for c in SEVERITY}
_ALONE = {h: _PLAIN[(h, h, h)] for h in SEVERITY}  # a node with no inputs: its own health
_BAD = SEVERITY[AT_RISK]


def _result(mine, ins, results, plain, max_causes):
    """The result of a node with inputs: its own health ``mine`` and its input edges ``ins``
    (in the order of ``edges``), whose sources' results are in ``results``.

    Most nodes take the first loop alone: every roll-up part on track or unknown, with its
    base the same, and no dependency pulling. Their roll-up, with or without what
    dependencies add, is then on track when the known parts weigh, else unknown
    (``rollup_health`` of such parts); nothing is worse than their own health because of
    something else, so they have no causes. Any other part: ``_worked_result``."""
    weights = []
    for e in ins:
        src = results[e.src]
        kind = e.kind
        if kind in ROLLUPS:
            effective = src.effective
            if effective is None:
                continue  # its base is unknown too: never worse than effective
            if effective != ON_TRACK or src.base != ON_TRACK:
                return _worked_result(mine, ins, results, plain, max_causes)
            weights.append(e.weight)
        elif kind == BROKEN or SEVERITY[src.effective] >= _BAD:
            return _worked_result(mine, ins, results, plain, max_causes)
    rolled = ON_TRACK if weights and sum(weights) > 0 else None
    base = mine if SEVERITY[mine] >= SEVERITY[rolled] else rolled
    return plain.get((mine, base, base)) or Result(mine, base, (), base)


def _worked_result(mine, ins, results, plain, max_causes):
    """``_result`` of a node with some part at risk, off track, or whose base differs."""
    bad, severity, score = _BAD, SEVERITY, SCORE
    # The roll-up of the parts' base healths, as ``rollup_health`` takes it (the same sums
    # of the same numbers in the same order), without a tuple per part: the known parts'
    # weights and their scores times their weights.
    weights, scores = [], []
    pulled = []  # (health it pushes here, source edge)
    dependency = None
    differs = False  # whether a part's base differs from its effective health
    for e in ins:
        src = results[e.src]
        if e.kind in ROLLUPS:
            base, effective = src.base, src.effective
            if base is not None:
                weights.append(e.weight)
                scores.append(score[base] * e.weight)
            if base != effective:
                differs = True
            if severity[effective] >= bad:
                pulled.append((effective, e))
        else:
            upstream = OFF_TRACK if e.kind == BROKEN else src.effective
            if severity[upstream] >= bad:
                pulled.append((upstream, e))
                dependency = AT_RISK
    rolled_base = _rolled(weights, scores)
    # The same parts give the same roll-up: computed again only when some base differs.
    rolled = rollup_health([(results[e.src].effective, e.weight) for e in ins
                            if e.kind in ROLLUPS]) if differs else rolled_base
    # What dependencies below add to the roll-up: at risk at most.
    if severity[rolled] > severity[rolled_base]:
        dependency = AT_RISK
    # ``worst``, inlined: the first of the worst.
    base = mine if severity[mine] >= severity[rolled_base] else rolled_base
    effective = base if severity[base] >= severity[dependency] else dependency
    causes, reasons = (), ()
    if SEVERITY[effective] > SEVERITY[mine]:
        causes, reasons = _causes(pulled, results, max_causes)
    return (Result(mine, effective, causes, base, reasons) if causes
            else plain.get((mine, effective, base)) or Result(mine, effective, (), base))


def _rolled(weights, scores):
    """``rollup_health`` of the known parts given as their weights and their scores times
    their weights."""
    if not weights:
        return None
    total = sum(weights)
    if total <= 0:
        return None
    value = sum(scores) / total
    return ON_TRACK if value >= 0.75 else AT_RISK if value >= 0.4 else OFF_TRACK


class Graph(NamedTuple):
    """What a full ``propagate`` worked on, kept to recompute after a change (``repropagate``):
    its own healths, its edges as given, each node's input edges, each node's outputs, each
    node's place in the topological order, and the results."""
    own: dict
    edges: list
    inputs: dict
    outputs: dict
    place: dict
    results: dict


def propagate_graph(own, edges, *, max_causes=MAX_CAUSES):
    """``propagate``, and the ``Graph`` to recompute from after a change."""
    edges = list(edges)
    paused = gc.isenabled()
    gc.disable()
    try:
        results, inputs, outputs = _propagate(own, edges, max_causes)
    finally:
        if paused:
            gc.enable()
    place = {node: i for i, node in enumerate(results)}  # the order they were computed in
    return Graph(own, edges, inputs, outputs, place, results)


def repropagate(graph, own, edges, *, max_causes=MAX_CAUSES):
    """``propagate_graph(own, edges)`` computed from ``graph``, a full run's (or an earlier
    ``repropagate``'s); None when the change is too large to be worth it (the caller
    propagates in full).

    A node's result depends only on its own health, its input edges in the order of ``edges``
    and its inputs' results. So only the nodes whose own health or input edges changed are
    computed again, then, in a topological order, those whose input's result changed; the
    others keep theirs. The results are those of a full run.

    Edges may change their kind or weight (a dependency broken or mended), come (a dependency
    that starts) or go (one that ends), as long as the edges both lists share keep their order
    (``_edge_changes``). An edge that goes leaves the order valid; one that comes from a node
    placed after its target moves the nodes between them that must move, and only those
    (Pearce and Kelly's dynamic topological order: a search bounded by the two places).

    Nodes may come (a new objective or key result) and go (one retired or deleted): a node
    that goes is taken out of the order with its edges (what is left stays in order; the
    nodes it fed get their input edges again); a node that comes is placed first, before
    every kept node (a node without edges can go anywhere), then its edges are added as
    above: its edges into kept nodes are then in order already, and only an edge from a kept
    node into a new one can move nodes (``_node_changes``)."""
    old_own, inputs, outputs, place = graph.own, graph.inputs, graph.outputs, graph.place
    gone = ()
    results = by_place = None
    if own.keys() != old_own.keys():
        nodes = _node_changes(graph, own)
        if nodes is None:
            return None
        came, gone = nodes
        # The kept order without the nodes gone, the new nodes first (None: computed below);
        # the places again.
        results = dict.fromkeys(came)
        results.update(graph.results)
        for node in gone:
            del results[node]
        by_place = list(results)
        place = dict(zip(by_place, range(len(by_place)), strict=True))
        dirty = {node for node, health in own.items() if old_own.get(node, _NEW) != health}
    else:
        dirty = {node for node, health in own.items() if old_own[node] != health}
    if edges != graph.edges or gone:
        changes = _edge_changes(graph.edges, edges, own)
        if changes is None:
            return None
        added, removed = changes
        fed = {e.dst for e in (*added, *removed)}
        for node in gone:  # what a node gone fed, and still is
            fed.update(dst for dst in outputs.get(node, ()) if dst not in gone)
        # Their input edges again, in the order of ``edges`` (as ``propagate`` makes them).
        fresh = {}
        for e in edges:
            if e.dst in fed and e.src in own:
                if e.dst in fresh:
                    fresh[e.dst].append(e)
                else:
                    fresh[e.dst] = [e]
        inputs = {**inputs, **fresh}
        for dst in fed - fresh.keys():
            inputs.pop(dst, None)
        for node in gone:
            inputs.pop(node, None)
        dirty |= fed
        if added or removed or gone:
            outputs, place, moved = _reorder(
                graph, inputs, outputs, place, added, removed, gone, by_place)
            if outputs is None:
                return None  # a loop, or too much to move: the full run says which
            if moved is not None:
                by_place = moved
                results = results if results is not None else graph.results
                results = {node: results[node] for node in by_place}
    if results is None:
        results = dict(graph.results)
    heap = [place[node] for node in dirty]
    if not heap:
        return Graph(own, edges, inputs, outputs, place, results)
    if by_place is None:
        by_place = list(graph.results)
    heapq.heapify(heap)
    queued = set(heap)
    paused = gc.isenabled()
    gc.disable()
    try:
        while heap:
            node = by_place[heapq.heappop(heap)]
            mine = own[node]
            ins = inputs.get(node)
            new = (_result(mine, ins, results, _PLAIN, max_causes) if ins is not None
                   else _PLAIN.get((mine, mine, mine)) or Result(mine, mine, (), mine))
            if new == results[node]:
                continue
            results[node] = new
            for dst in outputs.get(node, ()):
                if place[dst] not in queued:
                    queued.add(place[dst])
                    heapq.heappush(heap, place[dst])
    finally:
        if paused:
            gc.enable()
    # In a topological order (the full run's when no edge came or went), so that anything
    # iterating the results sees them inputs first.
    return Graph(own, edges, inputs, outputs, place, results)


# More edges changed than this share of them: a full run costs about as much.
RESHAPE_UP_TO = 0.05
_NEW = object()  # the own health a new node had before: none, unlike any


def _node_changes(graph, own):
    """(nodes that came, in order, nodes gone, as a set) between ``graph`` and the nodes
    ``own``; None when more than ``RESHAPE_UP_TO`` of the nodes changed, or when ``graph``'s
    edges named nodes it did not have (ignored then, they could name a new node now, and
    only the edges that changed are looked at)."""
    old = graph.own
    came = [node for node in own if node not in old]
    gone = {node for node in old if node not in own}
    if len(came) + len(gone) > RESHAPE_UP_TO * max(len(own), 1):
        return None
    # Every edge kept was taken in (``inputs`` has each edge whose two ends were nodes).
    if sum(map(len, graph.inputs.values())) != len(graph.edges):
        return None
    return came, gone


def _edge_changes(old, new, own):
    """(edges added, edges removed) between two lists of edges over the nodes ``own``: edges
    whose ends are both nodes (the others are ignored, as ``propagate`` ignores them), compared
    whole (a kind or a weight that changed is one edge removed and one added). None when the
    edges both lists share are not in the same order (the inputs of nodes that did not change
    would come in another order), when an edge repeats a different number of times, or when the
    change is large (more than ``RESHAPE_UP_TO`` of the edges)."""
    if len(old) == len(new):
        # Often only kinds or weights changed, in place: no sets needed.
        added, removed = [], []
        for a, b in zip(new, old, strict=True):
            if a != b:
                if a.src != b.src or a.dst != b.dst:
                    break
                added.append(a)
                removed.append(b)
        else:
            return _ignoring_outsiders(added, own), _ignoring_outsiders(removed, own)
    # The runs both lists share, walked from the start: each found by a galloping search of
    # slices compared in C; where they part, the nearest place they meet again within a few
    # edges (a dependency that starts or ends, a node's edges that come or go: a few edges
    # in a few places, say the key results' and the alignment edges' parts of the list).
    # The edges left out between are the edges removed and added. Matched in order, the
    # shared edges are in the same order and as many times by construction.
    limit = RESHAPE_UP_TO * max(len(new), 1)
    added, removed = [], []
    i = j = 0
    while True:
        shared = _shared_from(old, i, new, j)
        i, j = i + shared, j + shared
        if i == len(old) or j == len(new):
            removed += old[i:]
            added += new[j:]
            break
        met = _meet(old, i, new, j)
        if met is None:  # no meeting nearby: what is left, by sets
            rest = _region_changes(old[i:], new[j:], limit)
            if rest is None:
                return None
            added += rest[0]
            removed += rest[1]
            break
        removed += old[i:met[0]]
        added += new[j:met[1]]
        i, j = met
        if len(added) + len(removed) > limit:
            return None
    if len(added) + len(removed) > limit:
        return None
    if added and removed and not set(added).isdisjoint(removed):
        return None  # an edge that moved in the list: the shared edges' order changed
    return _ignoring_outsiders(added, own), _ignoring_outsiders(removed, own)


# How far ahead two lists of edges that parted are searched for a place where they meet again.
MEET_WITHIN = 64


def _meet(old, i, new, j):
    """The first (p, q) with ``old[p] == new[q]``, p from i and q from j, both within
    ``MEET_WITHIN``, p as small as can be; None when there is none."""
    ahead = {}
    for q in range(j, min(j + MEET_WITHIN, len(new))):
        ahead.setdefault(new[q], q)
    for p in range(i, min(i + MEET_WITHIN, len(old))):
        q = ahead.get(old[p])
        if q is not None:
            return p, q
    return None


def _shared_from(a, i, b, j):
    """The length of the longest run shared by ``a`` from ``i`` and ``b`` from ``j``: slices
    twice as long each time while they are equal, then a binary search in the last one (a
    short run costs little, a long one a few passes in C)."""
    n = min(len(a) - i, len(b) - j)
    low, step = 0, 16
    while low < n:
        high = min(low + step, n)
        if a[i + low:i + high] == b[j + low:j + high]:
            low, step = high, step * 2
            continue
        high -= 1  # a[i + high] differs somewhere up to here: the run ends before
        while low < high:
            middle = (low + high + 1) // 2
            if a[i + low:i + middle] == b[j + low:j + middle]:
                low = middle
            else:
                high = middle - 1
        return low
    return low


def _region_changes(old, new, limit):
    """(added, removed) between two lists of edges, by sets, between their longest shared
    start and end; None when the edges both share are not in the same order or not as many
    times (the inputs of nodes that did not change would come in another order), or when
    more than ``limit`` changed."""
    start = _shared(old, new)
    end = _shared(old[start:][::-1], new[start:][::-1])
    old, new = old[start:len(old) - end], new[start:len(new) - end]
    old_set, new_set = set(old), set(new)
    added = [e for e in new if e not in old_set]
    removed = [e for e in old if e not in new_set]
    if len(added) + len(removed) > limit:
        return None
    added_set, removed_set = set(added), set(removed)
    # The shared edges, in the same order and as many times: then each node's input edges
    # are the old ones, but for the edges added and removed.
    if [e for e in new if e not in added_set] != [e for e in old if e not in removed_set]:
        return None
    return added, removed


def _shared(a, b):
    """The length of the longest shared start of two lists: a binary search of slices
    compared in C (most edges are the very objects of the last run: compared by identity)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _ignoring_outsiders(edges, own):
    return [e for e in edges if e.src in own and e.dst in own]


# A search that must move more than this share of the nodes declines: a full run instead.
REORDER_UP_TO = 0.2


def _reorder(graph, inputs, outputs, place, added, removed, gone, by_place):
    """The outputs and the topological places (with the nodes by place, or None when the
    order ``by_place`` did not move) after the nodes ``gone`` (with their edges) and
    ``removed`` edges went and ``added`` edges came, moving as few nodes as Pearce and Kelly's
    algorithm moves: for an added edge x -> y with y placed before x, the nodes reachable
    from y placed up to x's place and the nodes reaching x placed from y's place are given
    their places again, those reaching x first. ``inputs`` is already the new graph's;
    ``place`` and ``by_place`` are the order without the nodes gone, with the new ones
    (``by_place`` None: the kept graph's). (None, None, None) on a loop or when too many nodes
    would move. The kept graph is not changed: what changes is copied."""
    outputs = dict(outputs)
    copied = set()

    def mine(src):
        if src not in copied:
            copied.add(src)
            outputs[src] = list(outputs.get(src, ()))
        return outputs[src]

    for node in gone:
        for e in graph.inputs.get(node, ()):
            if e.src not in gone:
                mine(e.src).remove(node)
        outputs.pop(node, None)
        copied.discard(node)
    for e in removed:
        mine(e.src).remove(e.dst)
    late = []
    for e in added:
        if place[e.src] < place[e.dst]:
            mine(e.src).append(e.dst)
        else:
            late.append(e)
    if late:
        place, by_place = _moved_places(
            by_place if by_place is not None else graph.results, inputs, outputs, place, late,
            mine)
        if place is None:
            return None, None, None
    else:
        by_place = None
    for src in copied:
        if not outputs[src]:
            del outputs[src]  # as ``propagate`` makes them: only nodes with outputs
    return outputs, place, by_place


def _moved_places(by_place, inputs, outputs, place, late, mine):
    """The places after adding the edges ``late``, each from a node placed after its target,
    and the nodes by place; (None, None) on a loop or when too many would move."""
    place = dict(place)
    by_place = list(by_place)
    budget = REORDER_UP_TO * len(by_place)
    # The sources of the added edges not in the graph yet, by target: the backward search
    # does not follow them (``inputs`` has them already; the outputs get them one by one).
    pending = defaultdict(Counter)
    for e in late:
        pending[e.dst][e.src] += 1
    for e in late:
        x, y = e.src, e.dst
        pending[y][x] -= 1
        if x == y:
            return None, None
        if place[x] < place[y]:  # an earlier move put them in order
            mine(x).append(y)
            continue
        after_y, before_x = place[y], place[x]
        # Forward from y: what it reaches placed before x (reaching x itself: a loop).
        ahead, stack = {y}, [y]
        while stack:
            for dst in outputs.get(stack.pop(), ()):
                if dst == x:
                    return None, None
                if dst not in ahead and place[dst] < before_x:
                    ahead.add(dst)
                    stack.append(dst)
        # Backward from x: what reaches it placed after y.
        behind, stack = {x}, [x]
        while stack:
            node = stack.pop()
            skip = +pending[node] if node in pending else None
            for edge in inputs.get(node, ()):
                src = edge.src
                if skip and skip[src] > 0:
                    skip[src] -= 1
                    continue
                if src not in behind and place[src] > after_y:
                    behind.add(src)
                    stack.append(src)
        if len(ahead) + len(behind) > budget:
            return None, None
        moved = sorted(behind, key=place.__getitem__) + sorted(ahead, key=place.__getitem__)
        for slot, node in zip(sorted(place[n] for n in moved), moved, strict=True):
            place[node] = slot
            by_place[slot] = node
        mine(x).append(y)
    return place, by_place


def _causes(pulled, results, limit):
    """Paths to the root causes through the worst inputs first, one path per root cause and
    reason. A part of the node's own health (``OWN``) is not a root cause itself; what reached
    it from elsewhere is."""
    seen, paths, reasons = set(), [], []
    for _, e in sorted(pulled, key=lambda p: -SEVERITY[p[0]]):
        src = results[e.src]
        through_dependency = e.kind not in ROLLUPS
        if src.causes:
            upstream = zip(src.causes, src.reasons, strict=True)
        elif e.kind == OWN:
            continue
        else:
            upstream = (((), ROLLUP_REASON),)
        for path, reason in upstream:
            if through_dependency:
                reason = DEPENDENCY_REASON
            full = (*path, e.src)
            if len(full) > MAX_PATH:
                full = (full[0], GAP, *full[-(MAX_PATH - 2):])
            if (full[0], reason) in seen:
                continue
            seen.add((full[0], reason))
            paths.append(full)
            reasons.append(reason)
            if len(paths) == limit:
                return tuple(paths), tuple(reasons)
    return tuple(paths), tuple(reasons)


def transitions(before, after):
    """Alerts to raise: nodes that newly turned at risk or off track because of something else,
    and nodes that recovered from such a state. before/after: {node: (effective, upstream_caused)}.

    Returns (node, kind) pairs, kind one of "worse" and "recovered".
    """
    changes = []
    for node, (effective, caused) in after.items():
        old_effective, old_caused = before.get(node, (None, False))
        if caused and SEVERITY[effective] > SEVERITY[old_effective]:
            changes.append((node, "worse"))
        elif old_caused and not caused and SEVERITY[effective] < SEVERITY[old_effective]:
            changes.append((node, "recovered"))
    return changes
