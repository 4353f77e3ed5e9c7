"""Progress that flows up, risk that flows down, and the impact of an at-risk objective.
Plain data in, plain data out: no Django. ``dependencies.network`` loads, calls these in its
compute phase and writes what changed; pages only read the stored results.

- Progress up: an objective whose progress counts "key results and aligned objectives" takes
  the weighted mean of its own key results' progress (one part, weight ``kr_weight``) and of
  each live aligned objective's progress (weight ``weight`` of that objective), bottom up, so a
  chain of such objectives adds up. Parts with nothing to measure are left out.
- Risk down: every objective below a company or department objective that is at risk or off
  track carries a flag naming the nearest such objective above it. Its own health is untouched.
- Impact: for an at-risk or off-track company or department objective, what is affected below it
  (its aligned objectives, all levels, and their key results) and downstream of them (the
  dependencies whose upstream end is below it, and what depends on them), how many people are
  on the affected teams, and the root causes ranked by how much they weigh in it.
"""

import heapq
from collections import defaultdict
from graphlib import TopologicalSorter
from itertools import chain

ON_TRACK, AT_RISK, OFF_TRACK = "on_track", "at_risk", "off_track"
BAD = frozenset((AT_RISK, OFF_TRACK))
# How much of a part's weight counts against the objective: off track all of it, at risk half.
BADNESS = {AT_RISK: 0.5, OFF_TRACK: 1.0}
UPPER_KINDS = frozenset(("company", "department"))
TOP = 5  # how many teams, objectives and root causes an impact lists by name


def top_down(objectives):
    """Objective ids, parents before their children (by tree level)."""
    return sorted(objectives, key=lambda pk: (objectives[pk]["level"], pk))


def primary_shares(extra_links):
    """{child: share of its primary parent} for the objectives with extra parents: what the
    extra parents' shares leave. extra_links: [(child, parent, share)]."""
    left = {}
    for child, _, share in extra_links:
        left[child] = left.get(child, 1.0) - float(share)
    return left


def _children(objectives, extra_links):
    """{parent: [(child, share)]}: the primary links (share: what the extra ones leave) and
    the extra ones, between live objectives."""
    primary = primary_shares(extra_links)
    children = defaultdict(list)
    for pk, o in objectives.items():
        if o["parent_id"] in objectives:
            children[o["parent_id"]].append((pk, primary.get(pk, 1.0)))
    for child, parent, share in extra_links:
        if child in objectives and parent in objectives:
            children[parent].append((child, float(share)))
    return children


def _children_first(objectives, children, extra_links):
    """Objective ids, every child before each of its parents. By tree level when every link
    is a primary one; with extra parents (which may sit at any level), topologically."""
    if not extra_links:
        return list(reversed(top_down(objectives)))
    graph = {pk: [c for c, _ in children[pk]] for pk in objectives}
    return list(TopologicalSorter(graph).static_order())


def roll_up_progress(objectives, own_progress, extra_links=(), aligned_key_results=()):
    """objectives: {pk: {"parent_id", "level", "mode", "kr_weight", "weight"}}; own_progress:
    {pk: 0-1 or None}, from its own key results. Returns {pk: progress or None} for the
    objectives whose mode is "aligned"; the others show their own progress.

    extra_links: [(child, parent, share)], the parents a child contributes to besides its
    primary one: it counts in each with its weight times its share there (the primary parent
    takes the share the others leave). aligned_key_results: [(objective, progress)], key
    results aligned to another team's objective: each counts there like an aligned objective
    of weight 1."""
    if not any(o["mode"] == "aligned" for o in objectives.values()):
        return {}  # every objective shows its own progress: nothing rolls up
    children = _children(objectives, extra_links)
    aligned = defaultdict(list)
    for pk, done in aligned_key_results:
        if done is not None:
            aligned[pk].append((done, 1.0))
    shown, rolled = {}, {}
    for pk in _children_first(objectives, children, extra_links):
        o = objectives[pk]
        own = own_progress.get(pk)
        if o["mode"] != "aligned":
            shown[pk] = own
            continue
        parts = [(own, float(o["kr_weight"]))] if own is not None else []
        parts += [(shown[c], float(objectives[c]["weight"]) * share)
                  for c, share in children[pk] if shown[c] is not None]
        parts += aligned[pk]
        parts = [(p, w) for p, w in parts if w > 0]
        total = sum(w for _, w in parts)
        value = round(sum(p * w for p, w in parts) / total, 4) if total else None
        shown[pk] = rolled[pk] = value
    return rolled


def risk_above(objectives, effective, extra_links=()):
    """objectives: {pk: {"parent_id", "level", "kind" (its team's), "title", "team"}};
    effective: {pk: health}. Returns {pk: {"id", "title", "team", "health"}} for each objective
    below a company or department objective at risk or off track: the nearest one above it
    (through its primary parent first, then its extra parents, ``extra_links``)."""
    extra = defaultdict(list)
    for child, parent, _ in extra_links:
        extra[child].append(parent)
    order = (top_down(objectives) if not extra_links else
             list(reversed(_children_first(objectives, _children(objectives, extra_links),
                                           extra_links))))
    flags = {}
    for pk in order:
        for parent in (objectives[pk]["parent_id"], *extra.get(pk, ())):
            if parent not in objectives:
                continue
            p = objectives[parent]
            if p["kind"] in UPPER_KINDS and effective.get(parent) in BAD:
                flags[pk] = {"id": parent, "title": p["title"], "team": p["team"],
                             "health": effective[parent]}
            elif parent in flags:
                flags[pk] = flags[parent]
            else:
                continue
            break
    return flags


def impacts(objectives, key_results, dependencies, results, members, describe, extra_links=(),
            *, kept=None, changed=None):
    """Impact of each company or department objective whose effective health is at risk or off
    track. Returns {pk: impact dict}.

    objectives: {pk: {"parent_id", "kind", "team_id", "title", "team"}};
    key_results: {pk: {"objective_id", "weight"}} (those of an objective not in ``objectives``
    count nowhere);
    dependencies: [(upstream node, downstream node)] with nodes ("o", pk) or ("k", pk);
    results: {node: object with ``own``, ``effective`` and ``causes`` (paths of nodes)};
    members: {team_id: set of user ids}; describe(node) -> a small dict naming the node;
    extra_links: [(child, parent, share)], the parents objectives contribute to besides their
    primary one: below counts them too (each objective once).

    kept, changed: to compute again only the impacts a change can reach. ``kept`` is a dict this
    function fills, {root: (the nodes its impact read, the impact)}, given back on the next
    call; ``changed``, the nodes (("o", pk) or ("k", pk)) whose row, result, parent or key
    results may differ from that call's, with every other argument the same (the caller checks
    it; None: anything may differ). A root whose nodes read include none of them has the
    impact it had: every value it reads is the same.
    """
    last = kept.copy() if kept is not None and changed is not None else {}
    if kept is not None:
        kept.clear()

    def health(node):
        r = results.get(node)
        return r.effective if r else None

    roots = [root for root, o in objectives.items()
             if o["kind"] in UPPER_KINDS and health(("o", root)) in BAD]
    # A root whose nodes read include none that changed has the impact it had.
    reused = {}
    for root in roots:
        mine = last.get(root)
        if mine is not None and mine[0].isdisjoint(changed):
            reused[root] = mine
    todo = [root for root in roots if root not in reused]
    if not todo:
        if kept is not None:
            kept.update(reused)
        return {root: mine[1] for root, mine in reused.items()}
    children = _grouped((pk, o["parent_id"]) for pk, o in objectives.items()
                        if o["parent_id"] in objectives)
    for child, parent, _ in extra_links:
        if child in objectives and parent in objectives:
            children.setdefault(parent, []).append(child)
    under, stack = set(), list(todo)
    while stack:
        pk = stack.pop()
        if pk not in under:
            under.add(pk)
            stack += children.get(pk, ())
    dependents, into = {}, {}  # upstream node -> downstream nodes, and back
    for up, down in dependencies:
        dependents.setdefault(up, []).append(down)
        into.setdefault(down, []).append(up)
    # What each objective below a root gives every root that reaches it, made once: its key
    # results' count, those of them that can add a root cause's weight with their weight (a
    # key result whose own health is at risk or off track, or a dependency's downstream end),
    # its children, the total weight of its inputs (its key results by their weight, an
    # aligned objective as 1, as the propagation weighs), its nodes, and the dependencies out
    # of and into them (``dependents``' and ``into``'s lists).
    krs_of = _grouped((pk, k["objective_id"]) for pk, k in key_results.items()
                      if k["objective_id"] in under)
    bad_own = set()
    parts = {}
    for pk in under:
        mine = krs_of.get(pk, ())
        nodes = [("k", k) for k in mine]
        weights = [float(key_results[k]["weight"]) for k in mine]
        kids = children.get(pk, ())
        weighed = []
        for node, w in zip(nodes, weights, strict=True):
            r = results.get(node)
            if r is not None and r.own in BAD:
                bad_own.add(node)
                weighed.append((node, w))
            elif node in into:
                weighed.append((node, w))
        nodes.append(("o", pk))
        parts[pk] = (len(mine), weighed, kids, sum(chain(weights, (1.0 for _ in kids))) or 1.0,
                     nodes, [dependents[node] for node in nodes if node in dependents],
                     [into[node] for node in nodes if node in into])
    objectives_into = {pk for kind, pk in into if kind == "o"}

    def objective_of(node):
        kind, pk = node
        if kind == "o":
            return pk
        objective = key_results.get(pk, {}).get("objective_id")
        return objective if objective in objectives else None

    severity, ranks = {OFF_TRACK: 0, AT_RISK: 1}, {}

    def rank(pk):
        """Worst first, then by title: kept for every root that lists the objective."""
        key = ranks.get(pk)
        if key is None:
            key = ranks[pk] = (severity.get(health(("o", pk)), 2), objectives[pk]["title"], pk)
        return key

    out, read = {}, {}
    for root in todo:
        # Below: the subtree (``seen``), with each node's share of the root's health (roll-up
        # weights), kept only for the objectives and the nodes that can add a root cause's
        # weight (``shares``, those in the order the subtree's nodes are first reached).
        share = {root: 1.0}  # by objective id
        shares = {("o", root): None} if root in objectives_into else {}
        below, krs, stack, seen = [], 0, [root], set()
        while stack:
            pk = stack.pop()
            if pk in seen:  # with several parents, an objective is reached more than once
                continue
            seen.add(pk)
            its_krs, weighed, kids, total, _, _, _ = parts[pk]
            above = share[pk]
            for node, w in weighed:
                shares[node] = 0.0 + above * w / total
            for c in kids:
                if c in share:
                    share[c] += above * 1.0 / total
                else:
                    share[c] = 0.0 + above * 1.0 / total
                    if c in objectives_into:
                        shares[("o", c)] = None
            krs += its_krs
            if pk != root:
                below.append(pk)
            stack += kids

        # Downstream: what depends on anything below it.
        deps, downstream = 0, set()
        for pk in seen:
            for downs in parts[pk][5]:
                for down in downs:
                    deps += 1
                    target = objective_of(down)
                    if target is not None and target not in seen:
                        downstream.add(target)
        affected = below + sorted(downstream)
        teams = {objectives[pk]["team_id"] for pk in [root, *affected]}
        people = set().union(*(members.get(t, ()) for t in teams)) if teams else set()
        # Root causes: key results below whose own health is at risk or off track weigh their
        # share; upstream dependencies into the subtree weigh the share of what they put at risk.
        # (In the order the nodes were reached: the sums are the same to the last bit.)
        weights = defaultdict(float)
        for node, mine in shares.items():
            if mine is None:
                mine = share[node[1]]
            if node in bad_own:
                weights[node] += mine * BADNESS[results[node].own]
            for up in into.get(node, ()):
                if _in_subtree(up, seen, key_results) or health(up) not in BAD:
                    continue
                roots_of = [path[0] for path in results[up].causes if path and path[0]] or [up]
                for cause in roots_of:
                    weights[cause] += mine * BADNESS[AT_RISK] / len(roots_of)
        # The first few of the causes sorted by weight, then node, and of
        # ``sorted(affected, key=rank)`` (the keys are unique: the same).
        ranked = _first(weights.items(), _by_weight)
        worst_first = _first(affected, rank)
        team_names = sorted({objectives[pk]["team"] for pk in [root, *affected]})
        out[root] = {
            "health": health(("o", root)),
            "teams": len(teams), "objectives": len(affected), "key_results": krs,
            "dependencies": deps, "people": len(people),
            "team_names": team_names[:TOP],
            "top_objectives": [describe(("o", pk)) for pk in worst_first],
            "causes": [{**describe(node), "weight": round(w * 100)} for node, w in ranked],
            "more_causes": max(0, len(weights) - TOP),
        }
        if kept is not None:
            # What it read: the subtree, what flows into it and out of it, what it names.
            mine = [parts[pk] for pk in seen]
            read[root] = (frozenset(chain(
                chain.from_iterable(p[4] for p in mine),
                chain.from_iterable(chain.from_iterable(p[6] for p in mine)),
                chain.from_iterable(chain.from_iterable(p[5] for p in mine)),
                (("o", pk) for pk in downstream),
                weights)), out[root])
    # In the roots' order, kept and computed alike.
    if kept is not None:
        kept.update((root, reused.get(root) or read[root]) for root in roots)
    return {root: reused[root][1] if root in reused else out[root] for root in roots}


def _in_subtree(node, seen, key_results):
    """Whether ``node`` is in the subtree of the objectives ``seen``: one of them or one of
    their key results."""
    kind, pk = node
    if kind == "o":
        return pk in seen
    k = key_results.get(pk)
    return k is not None and k["objective_id"] in seen


def _first(items, key):
    """The first ``TOP`` of ``sorted(items, key=key)``: sorted in C when they are few (most
    roots name a handful), by a heap of ``TOP`` otherwise."""
    if len(items) <= 8 * TOP:
        return sorted(items, key=key)[:TOP]
    return heapq.nsmallest(TOP, items, key=key)


def _by_weight(item):
    return -item[1], item[0]


def _grouped(pairs):
    """{group: [item, ...]} of (item, group) pairs, items in the order given. A new group's list
    is made only when the group first comes (``setdefault`` would make one per pair)."""
    groups = {}
    for item, group in pairs:
        if group in groups:
            groups[group].append(item)
        else:
            groups[group] = [item]
    return groups
