"""What a process keeps of a cycle's last run, saved in the database so that a restart is not a
run from nothing.

``dependencies.network`` keeps, per cycle, the rows it read with their versions, what each key
result gave, own healths by their inputs, the propagation's graph and the impacts
(``network._ROWS``, ``_GAVE``, ``_HEALTHS``, ``_GRAPHS``, ``_IMPACTS``). Each part is checked
before use against what the run reads, whatever its age: a row is reused only while its version
(``xmin``/``ctid``) is the one kept, what a key result gave only for that very row, the graph
only for the own healths and edges it was made from (``propagation.repropagate``), an impact
only if none of the nodes it read moved. So a copy of that state is as good as the process's
own, however old, as long as it is the state a run of this code, in this database, left for
this cycle: ``save`` writes it (one row per cycle, ``NetworkSnapshot``, replaced), ``restore``
gives it back to a process that kept nothing.

What ``restore`` checks before it believes a row:
- the signature (HMAC with the ``SECRET_KEY``) over the organization, the cycle and the bytes:
  a damaged row, or one copied from another cycle or organization, is ignored;
- the format, the code version (``network.code_version``), the database (PostgreSQL's system
  identifier and the database's oid: row versions mean nothing in another cluster or a
  restored copy) and, on PostgreSQL, that fewer than 2^31 transactions went by since it was
  saved (a row version's ``xmin`` is 32 bits).
Anything wrong: it is logged and the run computes from nothing, as before.

The encoding is flat and columnar (round 11's pickle of the objects cost what computing them
costs): the nodes once, as a kind and an id each; everything that names a node or an edge names
it by its index; each column of rows as one typed array (``array('q')``, ``array('d')``), the
text of a column joined once, or a byte per value for a column of few distinct values; lists
as their lengths and one flat array. Reading it back builds the objects with C-level loops
(``map``, ``zip``, ``dict(zip(...))``) and shares one tuple per node and one string per
distinct value of a column of few. Only what does not fit a column (a risk cause's paths, an
impact's summary, the own healths' keys) is ``marshal``-ed, and only after the signature
checks: only this code's own output is ever read.

Off PostgreSQL there are no row versions: every row is read on every run, so only the graph and
the own healths are saved (what the rows would give is never reused there).
"""

import hmac
import json
import logging
import marshal
import math
import struct
import time
import zlib
from array import array
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from itertools import accumulate, chain, compress, count, repeat
from operator import eq, is_, is_not, itemgetter

from celery.signals import worker_process_init, worker_process_shutdown
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_scopes import scopes_disabled

from . import propagation
from .models import NetworkSnapshot

logger = logging.getLogger(__name__)

# Round 11's pickle was 1; 3: the rows' horizon; 4: the warm run's parts; 5: each objective
# row's hash (``network._OBJECTIVE_HASH``), which a row of an older format lacks, own healths
# and edges shared with the graph, tuples of few values once each.
FORMAT = 5
MAGIC = b"NKS2"
SALT = "dependencies.snapshot"
# A process saves a cycle's state after a run that computed it from nothing (nothing kept,
# nothing saved that could be used: a new worker, a deploy), then once its runs of the cycle
# have gone on this long since it last saved or restored it, and when a worker process stops
# (``worker_process_shutdown``). A process that dies without stopping so leaves a state at most
# this old: every row written since is read again (``network._patch``), not computed from
# nothing. A save costs about a second of CPU at 100,000 nodes (1.1-1.4 s at load 3-7),
# after the run's commit.
SAVE_EVERY = 600.0  # seconds
MAX_XID_AGE = 2**31
_saved = {}  # cycle id -> time.monotonic() of this process's last save or restore
# The last save's and restore's figures in this process (``bench_propagation`` prints them):
# "size" (bytes), "save_ms", "restore_ms" (the row read, checked and decoded), "read_ms" (read
# and checked), wall time; "save_cpu_ms" ("pack_cpu_ms" of it), "restore_cpu_ms", this process's
# CPU.
stats = {}


def forget():
    _saved.clear()


# -- columns ---------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NONE = type(None)
FEW = 255  # distinct values of a text column stored as a byte per value


def _pack_values(values, kinds):
    """A list of values (no None) whose types are ``kinds`` as (code, data)."""
    if len(kinds) == 1:
        kind = next(iter(kinds))
        try:
            if kind is int:
                return "i", array("q", values).tobytes()
            if kind is float:
                return "f", array("d", values).tobytes()
            if kind is bool:
                return "b", bytes(values)
            if kind is str or kind is Decimal:
                texts = values if kind is str else list(map(str, values))
                # A column of few distinct values (a health, a kind, a team's name): a byte
                # each, and one string per value once read back. Looked for in a sample first.
                if len(set(texts[:4 * FEW])) <= FEW:
                    few = list(dict.fromkeys(texts))
                    if len(few) <= FEW:
                        codes = bytes(map(dict(zip(few, count())).__getitem__, texts))
                        return "c" if kind is str else "C", (few, codes)
                joined = "\0".join(texts)
                if joined.count("\0") == len(texts) - 1:  # no value holds the separator
                    return "s" if kind is str else "S", joined.encode("utf-8", "surrogatepass")
            if kind is tuple and len(set(map(len, values))) == 1 and values[0]:
                # Tuples of one length (what a key result gave its objective, say): a column
                # per position, zipped back; when they are few distinct ones (a key result's
                # flags, its part of its objective), each once and a code per value, read back
                # as one shared tuple per distinct value (they are immutable).
                columns = list(zip(*values, strict=True))
                few = _few_tuples(values, columns)
                if few is not None:
                    return "U", few
                return "T", [_pack_column(column) for column in columns]
            if kind is datetime and all(v.tzinfo is UTC for v in values):
                micros = map(_MICROSECOND.__rfloordiv__, map(_EPOCH.__rsub__, values))
                return "t", array("q", micros).tobytes()
        except OverflowError:
            pass
    return "m", marshal.dumps(values)


_EXACT = frozenset((bool, int, str, _NONE))  # equal values of one of these types are the same


def _few_tuples(values, columns):
    """(the distinct tuples, a code per value) when ``values`` (tuples of plain values) hold at
    most a quarter as many distinct ones, and equal tuples are the same value, to the type and
    the ``repr``: each position holds one type (and None), and a float position no -0.0 (equal
    to 0.0). Else None."""
    floats = []
    for column in columns:
        kinds = set(map(type, column))
        kinds.discard(_NONE)
        if len(kinds) > 1 or not kinds <= _EXACT | {float}:
            return None
        if kinds == {float}:
            floats.append(column)
    sample = values[:4096]  # most often telling: a few, or about as many as values
    if len(set(sample)) > len(sample) // 4:
        return None
    for column in floats:
        zeros = list(compress(column, map(eq, column, repeat(0.0))))  # None is not
        if min(map(math.copysign, repeat(1.0), zeros), default=1.0) < 0:
            return None
    distinct = dict.fromkeys(values)
    if len(distinct) > len(values) // 4 or len(distinct) > 2**32:
        return None
    few = list(distinct)
    codes = array("I", map(dict(zip(few, count())).__getitem__, values))
    return marshal.dumps(few), codes.tobytes()


def _unpack_values(code, data):
    if code == "i":
        return array("q", data).tolist()
    if code == "f":
        return array("d", data).tolist()
    if code == "b":
        return list(map(bool, data))
    if code in ("c", "C"):
        few, codes = data
        if code == "C":
            few = list(map(Decimal, few))
        return list(map(few.__getitem__, codes))
    if code in ("s", "S"):
        texts = data.decode("utf-8", "surrogatepass").split("\0")
        return texts if code == "s" else list(map(Decimal, texts))
    if code == "T":
        return list(zip(*map(_unpack_column, data), strict=True))
    if code == "U":
        few, codes = data
        return list(map(marshal.loads(few).__getitem__, array("I", codes)))
    if code == "t":
        return list(map(_EPOCH.__add__, map(_MICROSECOND.__mul__, array("q", data))))
    if code == "m":
        return marshal.loads(data)
    raise ValueError(f"unknown column code {code!r}")


def _pack_column(values):
    """A column of values: (length, where its Nones are, code, data). The Nones are given by
    their places when they are few, else the values by theirs, so that putting them back loops
    over the fewer of the two."""
    values = values if values.__class__ is list else list(values)
    n = len(values)
    kinds = set(map(type, values))
    if _NONE not in kinds:
        return (n, "", b"", *_pack_values(values, kinds))
    kinds.discard(_NONE)
    if not kinds:
        return (n, "all", b"", "m", marshal.dumps([]))
    nones = list(compress(count(), map(is_, values, repeat(None))))
    if 2 * len(nones) <= n:  # the Nones' places; they hold a value of the column meanwhile
        filler = next(v for v in values if v is not None)
        dense = values.copy()
        for i in nones:
            dense[i] = filler
        return (n, "nones", array("q", nones).tobytes(), *_pack_values(dense, kinds))
    present = list(compress(count(), map(is_not, values, repeat(None))))
    return (n, "present", array("q", present).tobytes(),
            *_pack_values(list(map(values.__getitem__, present)), kinds))


def _unpack_column(packed):
    n, how, places, code, data = packed
    values = _unpack_values(code, data)
    if how == "":
        return values
    if how == "all":
        return [None] * n
    if how == "nones":
        for i in array("q", places):
            values[i] = None
        return values
    column = [None] * n
    for i, value in zip(array("q", places), values, strict=True):
        column[i] = value
    return column


def _pack_rows(rows):
    """Row dicts with the same keys as their names and one column each (read back with the
    keys in the first row's order)."""
    rows = rows if rows.__class__ is list else list(rows)
    if not rows:
        return (), []
    names = tuple(rows[0])
    # As many keys in each, and each has all of them (``itemgetter`` below): the same keys.
    if set(map(len, rows)) != {len(names)}:
        raise ValueError("rows with different columns")
    # A column at a time (one lookup per row and column, in C): half the time of taking each
    # row's values as a tuple and transposing them.
    return names, [_pack_column(list(map(itemgetter(name), rows))) for name in names]


def _unpack_rows(packed):
    names, columns = packed
    if not names:
        return []
    return _row_maker(names)(list(map(_unpack_column, columns)))


@lru_cache(maxsize=8)
def _row_maker(names):
    """A function that makes rows (dicts of the columns ``names``) of columns of values:
    ``lambda columns: [{"id": v0, "title": v1, ...} for v0, v1, ... in zip(*columns)]``.
    Written out because a dict display with constant keys makes each dict at its size in one
    step, in about 60% of the time ``dict(zip(names, values))`` takes: at 100,000 rows the
    largest part of reading a saved state back. The names are column names this code saved
    (and signed); each is written as its ``repr``, a string literal, whatever it holds."""
    if not all(name.__class__ is str for name in names):
        raise ValueError("column names must be strings")
    values = ", ".join(f"v{i}" for i in range(len(names)))
    pairs = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    return eval(f"lambda columns: [{{{pairs}}} for {values}, in zip(*columns, strict=True)]")


def _lists(lengths, flat):
    """``flat`` (a list or a tuple) cut into consecutive slices of ``lengths``."""
    ends = list(accumulate(lengths))
    return list(map(flat.__getitem__, map(slice, [0, *ends[:-1]], ends)))


def _ints(data):
    return array("q", data)


def _named(table, data):
    """The items of ``table`` (nodes, edges) at the indexes ``data`` holds."""
    return map(table.__getitem__, array("q", data))


class _Table:
    """Things named by their index: the nodes, the edges; one not seen yet is added. Looked up
    by identity first with ``by_identity`` (the edges: hashing one hashes its nodes), which is
    safe as every item looked up and every item of the table is alive meanwhile."""

    def __init__(self, items, *, by_identity=False, places=None):
        self.items = list(items)
        self.by_identity = by_identity
        # ``places``: the items' places already ({item: index}, the graph's ``place``, which
        # ``_pack_graph`` checks), copied: the table adds to its own.
        self.places = places.copy() if places is not None and len(places) == len(
            self.items) else dict(zip(map(id, self.items) if by_identity else self.items,
                                      count()))
        self.equal = None if by_identity else self.places

    def indexes(self, items):
        items = items if items.__class__ is list else list(items)
        found = list(map(self.places.get, map(id, items) if self.by_identity else items))
        if None in found:
            for i in list(compress(count(), map(is_, found, repeat(None)))):
                found[i] = self._add(items[i])
        return array("q", found).tobytes()

    def _add(self, item):
        if self.equal is None:
            self.equal = dict(zip(self.items, count()))
        place = self.equal.get(item)
        if place is None:
            place = self.equal[item] = len(self.items)
            self.items.append(item)
            if self.by_identity:
                self.places[id(item)] = place
        return place


_KINDS = ("o", "k")  # network.OBJ, network.KR
_HEALTH_CODES = {None: 0, propagation.ON_TRACK: 1, propagation.AT_RISK: 2,
                 propagation.OFF_TRACK: 3}
# A result without causes is one of 64 shared values (``propagation._PLAIN``): a byte each.
_PLAIN_CODES = {result: 16 * _HEALTH_CODES[a] + 4 * _HEALTH_CODES[b] + _HEALTH_CODES[c]
                for (a, b, c), result in propagation._PLAIN.items()}
_PLAIN_IDS = {id(result): code for result, code in _PLAIN_CODES.items()}  # they live on
_PLAIN_BY_CODE = [None] * 256
for _result, _code in _PLAIN_CODES.items():
    _PLAIN_BY_CODE[_code] = _result
_SPECIAL = 255


# -- the state -------------------------------------------------------------------------------

def pack(state):
    """``state`` (what ``network`` keeps of a cycle: "graph", "healths", "rows", "gave",
    "elapsed", "impacts", any of them None) as a dict of flat parts, for ``marshal``."""
    graph, rows, gave, impacts = state["graph"], state["rows"], state["gave"], state["impacts"]
    nodes = _Table(graph.results, places=graph.place)
    edges = _Table(graph.edges, by_identity=True)
    out = {"graph": _pack_graph(graph, nodes)}
    healths = state["healths"]
    if healths:
        try:
            out["healths"] = marshal.dumps(healths)
        except ValueError:  # a value marshal cannot hold: the run computes them again
            pass
    if rows is not None:
        # The horizon too (``network._horizon``): a transaction id of this database, which
        # the header names; the next run reads only the rows written since it.
        out["rows"] = (marshal.dumps(rows.teams), _keyed_rows(rows.objectives),
                       _keyed_rows(rows.key_results), rows.horizon)
        if gave is not None:
            out["gave"] = (state["elapsed"], _pack_gave(gave, rows.key_results, edges))
        if impacts is not None and impacts.results is graph.results:
            out["impacts"] = _pack_impacts(impacts, rows, nodes)
        # What the warm run keeps besides (own healths and edges, the diff, the flows): each
        # refers to the rows and the results by identity, which the save keeps by ids.
        for part, packer in (("own", _pack_own), ("diffed", _pack_diffed),
                             ("flows", _pack_flows)):
            if state.get(part) is not None:
                try:
                    packed = packer(state, nodes, edges)
                except (ValueError, TypeError):  # not of this state, or a value not saved
                    packed = None
                if packed is not None:
                    out[part] = packed
        if state.get("rules") is not None:  # the rules' kept state (``alignment.kept``)
            from alignment import kept

            try:
                packed = kept.save(state["rules"])  # bytes, decoded when first needed
            except (ValueError, TypeError):
                packed = None
            if packed is not None:
                out["rules"] = packed
    # Last, the edges then the nodes: the other parts may have added some.
    items = edges.items
    out["edges"] = (nodes.indexes(map(itemgetter(0), items)),
                    nodes.indexes(map(itemgetter(1), items)),
                    _pack_column(map(itemgetter(2), items)),
                    _pack_column(map(itemgetter(3), items)))
    out["nodes"] = (bytes(map(_KINDS.index, map(itemgetter(0), nodes.items))),
                    array("q", map(itemgetter(1), nodes.items)).tobytes())
    return out


def unpack(parts):
    """What ``pack`` gave, as the objects ``network`` keeps: a dict with the same keys."""
    from .network import _KeptImpacts, _KeptRows

    kinds, ids = parts["nodes"]
    nodes = list(zip(map(_KINDS.__getitem__, kinds), _ints(ids), strict=True))
    sources, targets, kinds, weights = parts["edges"]
    # Each edge built by ``tuple.__new__`` (``Edge``'s own ``__new__`` is a call in Python),
    # its ends the nodes' own tuples (one per node, shared by every part).
    edges = list(map(partial(tuple.__new__, propagation.Edge), zip(
        map(nodes.__getitem__, _ints(sources)), map(nodes.__getitem__, _ints(targets)),
        _unpack_column(kinds), _unpack_column(weights), strict=True)))
    graph = _unpack_graph(parts["graph"], nodes, edges)
    state = {"graph": graph, "healths": None, "rows": None, "gave": None, "elapsed": None,
             "impacts": None, "own": None, "diffed": None, "flows": None, "rules": None}
    if "healths" in parts:
        state["healths"] = marshal.loads(parts["healths"])
    if "rows" in parts:
        teams, objectives, key_results, horizon = parts["rows"]
        rows = _KeptRows(marshal.loads(teams), _unkeyed_rows(objectives),
                         _unkeyed_rows(key_results), horizon)
        state["rows"] = rows
        if "gave" in parts:
            state["elapsed"], gave = parts["gave"]
            state["gave"] = _unpack_gave(gave, rows.key_results, edges)
        if "impacts" in parts:
            state["impacts"] = _unpack_impacts(parts["impacts"], rows, nodes, graph.results,
                                               _KeptImpacts)
        if "own" in parts and state["gave"] is not None:
            state["own"] = _unpack_own(parts["own"], state, nodes, edges)
        if "diffed" in parts:
            state["diffed"] = _unpack_diffed(parts["diffed"], state, nodes)
        if "flows" in parts:
            state["flows"] = _unpack_flows(parts["flows"], state)
        state["rules"] = parts.get("rules")  # ``alignment.kept.take`` decodes it
    return state


def _keyed_rows(rows):
    """{id: row} as rows keyed by their "id" column, in the dict's order."""
    values = list(rows.values())
    if list(rows) != list(map(itemgetter("id"), values)):
        raise ValueError("rows not keyed by their id")
    return _pack_rows(values)


def _unkeyed_rows(packed):
    rows = _unpack_rows(packed)
    return dict(zip(map(itemgetter("id"), rows), rows, strict=True))


def _pack_graph(graph, nodes):
    """``propagation.Graph``: its results in their (topological) order, which is the nodes'
    order, a byte each but for those with causes. The rest follows from them and the edges
    (``_unpack_graph``), checked here: each own health is its result's, each place its
    result's place in that order."""
    results = list(graph.results.values())
    order = nodes.items[:len(results)]
    if list(map(itemgetter(0), results)) != list(map(graph.own.get, order)) \
            or len(graph.own) != len(order) or len(graph.place) != len(order) \
            or list(map(graph.place.get, order)) != list(range(len(order))):
        raise ValueError("a graph whose own healths or places are not its results'")
    codes = list(map(_PLAIN_IDS.get, map(id, results)))  # mostly the shared ones themselves
    for i in list(compress(count(), map(is_, codes, repeat(None)))):
        codes[i] = _PLAIN_CODES.get(results[i], _SPECIAL)
    codes = bytes(codes)
    special = [(i, tuple(results[i])) for i in compress(count(), map((_SPECIAL).__eq__, codes))]
    return {"results": (codes, marshal.dumps(special)), "edges": len(graph.edges)}


def _unpack_graph(packed, nodes, edges):
    """The graph as ``propagate_graph`` or ``repropagate`` left it: its own healths are its
    results' (``Result.own``), its places their order, its inputs and outputs those of its
    edges, in their order (as ``propagation._propagate`` makes them; ``repropagate`` keeps each
    node's input edges in the order of the edges, and the order of a node's outputs decides
    nothing: the nodes a change reaches are taken by their places)."""
    codes, special = packed["results"]
    results = list(map(_PLAIN_BY_CODE.__getitem__, codes))
    for i, result in marshal.loads(special):
        results[i] = propagation.Result(*result)
    order = nodes[:len(results)]
    own = dict(zip(order, map(itemgetter(0), results), strict=True))
    edges = edges[:packed["edges"]]
    inputs, outputs = propagation._inputs_and_outputs(edges)
    if not (inputs.keys() <= own.keys() and outputs.keys() <= own.keys()):
        inputs, outputs = propagation._inputs_and_outputs(
            [e for e in edges if e.src in own and e.dst in own])
    place = dict(zip(order, range(len(order)), strict=True))
    return propagation.Graph(own, edges, inputs, outputs, place,
                             dict(zip(order, results, strict=True)))


def _pack_gave(gave, key_results, edges):
    """What each key result gave (``network._own_health_and_edges``): (its row, (stale, no
    objective, team, fed), own health, aligned part, edges, objective's part). An entry made
    from another row than the one kept (a copy a run made: a rolled-up value) keeps a
    stand-in row of the two columns read of it (its objective, its last check-in): never the
    row a run reads, so its entry is made again, as in the process."""
    pks, values = list(gave), list(gave.values())
    if not pks:
        return None
    rows, flags, healths, aligned, kr_edges, parts = (
        list(map(itemgetter(i), values)) for i in range(6))  # a column at a time, as rows
    others = list(compress(count(), map(is_not, rows, map(key_results.get, pks))))
    return (array("q", pks).tobytes(),
            _pack_column(flags),
            _pack_column(healths), _pack_column(aligned), _pack_column(parts),
            array("q", map(len, kr_edges)).tobytes(),
            edges.indexes(chain.from_iterable(kr_edges)),
            (array("q", others).tobytes(),
             _pack_column([rows[i]["objective_id"] for i in others]),
             _pack_column([rows[i]["last_check_in_at"] for i in others])))


def _unpack_gave(packed, key_results, edges):
    if packed is None:
        return {}
    pks, flags, healths, aligned, parts, lengths, flat, (others, objectives, lasts) = packed
    pks = _ints(pks)
    rows = list(map(key_results.get, pks))
    for i, objective_id, last in zip(_ints(others), _unpack_column(objectives),
                                     _unpack_column(lasts), strict=True):
        rows[i] = {"objective_id": objective_id, "last_check_in_at": last}
    kr_edges = _lists(_ints(lengths), tuple(_named(edges, flat)))  # slices of a tuple: tuples
    return dict(zip(pks, zip(rows, _unpack_column(flags),
                             _unpack_column(healths), _unpack_column(aligned), kr_edges,
                             _unpack_column(parts), strict=True), strict=True))


def _pack_identities(table, kept, parent):
    """A dict of rows the impacts were computed from ({id: row}): its ids, and for the rows that
    are not the very row kept (a copy a run made), their parent: ``network._moved`` counts such
    a row as moved, and reads only its parent."""
    ids = list(table)
    same = list(map(is_, table.values(), map(kept.get, ids)))
    others = [(i, table[ids[i]][parent]) for i in compress(count(), map(_NOT.__getitem__, same))]
    # Most often a copy of the rows kept, in their order: not saved again (None).
    if not others and len(ids) == len(kept) and ids == list(kept):
        return None, marshal.dumps(others)
    return array("q", ids).tobytes(), marshal.dumps(others)


_NOT = {True: False, False: True}


def _unpack_identities(packed, kept, parent):
    ids, others = packed
    if ids is None:  # a copy of the rows kept (``_pack_identities``)
        return kept.copy()
    ids = _ints(ids)
    rows = list(map(kept.get, ids))
    for i, value in marshal.loads(others):
        rows[i] = {parent: value}  # never the row a run reads: counted as moved
    return dict(zip(ids, rows, strict=True))


def _pack_impacts(impacts, rows, nodes):
    deps = impacts.dependencies
    roots = list(impacts.kept)
    read = [impacts.kept[root][0] for root in roots]
    return {
        "objectives": _pack_identities(impacts.objectives, rows.objectives, "parent_id"),
        "key_results": _pack_identities(impacts.key_results, rows.key_results, "objective_id"),
        "dependencies": (nodes.indexes(map(itemgetter(0), deps)),
                         nodes.indexes(map(itemgetter(1), deps))),
        # {team: set of user ids}, a defaultdict when made from the memberships.
        "members": (isinstance(impacts.members, defaultdict), marshal.dumps(dict(impacts.members))),
        "extra": _pack_column(impacts.extra),
        "kept": (array("q", roots).tobytes(), array("q", map(len, read)).tobytes(),
                 nodes.indexes(chain.from_iterable(read)),
                 marshal.dumps([impacts.kept[root][1] for root in roots])),
    }


def _unpack_impacts(packed, rows, nodes, results, kept_impacts):
    ups, downs = packed["dependencies"]
    deps = list(zip(_named(nodes, ups), _named(nodes, downs), strict=True))
    roots, lengths, flat, summaries = packed["kept"]
    read = map(frozenset, _lists(_ints(lengths), list(map(nodes.__getitem__, _ints(flat)))))
    kept = dict(zip(_ints(roots), zip(read, marshal.loads(summaries), strict=True), strict=True))
    extra = _unpack_column(packed["extra"])
    by_default, members = packed["members"]
    members = marshal.loads(members)
    if by_default:
        members = defaultdict(set, members)
    return kept_impacts(
        _unpack_identities(packed["objectives"], rows.objectives, "parent_id"),
        _unpack_identities(packed["key_results"], rows.key_results, "objective_id"),
        results, deps, members, extra, kept)


# What the warm run keeps besides: the own healths and edges (``network._KeptOwn``), the diff
# (``_Diffed``), the flows (``_KeptFlows``). Each refers to rows and results by identity, as the
# process's own does: the rows by their ids (the very rows kept, ``_KeptRows``), the results by
# their nodes (the graph's), and a row or result that was not the very one kept (a copy a run
# made) as a stand-in never the one a run holds, so that it counts as moved, as in the process.

_NOT_KEPT = object()  # stands in for a row or a result that was not the very one kept


def _pack_same(table, kept, keys):
    """``table`` ({key: value}, meant to hold the very values of ``kept``) as its keys
    (``keys`` packs them) and the places of the values that are not ``kept``'s."""
    names = list(table)
    others = compress(count(), map(is_not, table.values(), map(kept.get, names)))
    # Most often the same keys as ``kept``, in its order (a copy of it): not saved again.
    same = len(names) == len(kept) and names == list(kept)
    return None if same else keys(names), array("q", others).tobytes()


def _unpack_same(packed, kept, keys):
    names, others = packed
    others = _ints(others)
    if names is None:
        # A copy of ``kept`` (one C-level copy of the dict), with the few others put in.
        table = kept.copy()
        if others:
            names = list(kept)
            for i in others:
                table[names[i]] = _NOT_KEPT
        return table
    names = list(keys(names))
    values = list(map(kept.get, names))
    for i in others:
        values[i] = _NOT_KEPT
    return dict(zip(names, values, strict=True))


def _ids(pks):
    return array("q", pks).tobytes()


def _pack_dict(table):
    """{id: value} as its ids and a column of its values, in its order."""
    return _ids(table), _pack_column(list(table.values()))


def _unpack_dict(packed):
    ids, values = packed
    return dict(zip(_ints(ids), _unpack_column(values), strict=True))


def _pack_list(values):
    """A list (or a tuple) of values: which it was, and its column."""
    return values.__class__ is tuple, _pack_column(list(values))


def _unpack_list(packed):
    is_tuple, column = packed
    values = _unpack_column(column)
    return tuple(values) if is_tuple else values


def _pack_own(state, nodes, edges):
    """``network._KeptOwn``: only when made of the very rows kept and what they gave (as the
    process's own always is, but after a run that left a row out)."""
    own, rows = state["own"], state["rows"]
    if own.gave is not state["gave"] or any(map(
            is_not, own.objectives.values(), map(rows.objectives.get, own.objectives))):
        return None
    fresh = None if own.fresh is None else (
        _pack_column(list(map(itemgetter(0), own.fresh))),
        _ids(map(itemgetter(1), own.fresh)))
    extra, dependencies = own.edge_inputs
    graph = state["graph"]
    # Parts that are, in the process, the graph's own or made of what the key results gave
    # (as a run leaves them) are not saved again: read back, they are those objects (None).
    # The graph's own healths: the very dict (``propagate_graph`` and ``repropagate`` keep it),
    # saved as its order alone (its values are the results' own healths, ``_pack_graph``).
    same_own = own.own is graph.own
    # The key results' edges: those of what each gave, in its order (``_own_health_and_edges``
    # makes them so; ``_patched_own`` keeps the last run's when they are equal: equal edges,
    # and an edge is only ever compared by value).
    made = list(chain.from_iterable(map(itemgetter(4), state["gave"].values())))
    same_kr_edges = made == own.kr_edges
    # The edges given: the graph's (the very list after a warm run; a copy of it after a run
    # from nothing, ``propagate_graph``), edge for edge. Neither list is changed once made.
    same_edges = own.edges is graph.edges or (
        len(own.edges) == len(graph.edges) and all(map(is_, own.edges, graph.edges)))
    # ``now`` is only compared with the next run's: kept as the instant, in UTC.
    return {"now": (own.now - _EPOCH) // _MICROSECOND, "elapsed": own.elapsed,
            "objectives": _ids(own.objectives),
            "own": (nodes.indexes(list(own.own)),
                    None if same_own else _pack_column(list(own.own.values()))),
            "kr_edges": None if same_kr_edges else edges.indexes(own.kr_edges),
            "edge_inputs": (_pack_list(extra), _pack_list(dependencies)),
            "edges": None if same_edges else edges.indexes(own.edges),
            "kr_given": own.kr_given,
            "own_progress": _pack_dict(own.own_progress),
            "aligned": _pack_list(own.aligned_key_results), "fresh": fresh}


def _unpack_own(packed, state, nodes, edges):
    from .network import _KeptOwn

    objectives, graph, gave = state["rows"].objectives, state["graph"], state["gave"]
    ids = _ints(packed["objectives"])
    order, values = packed["own"]
    order = list(_named(nodes, order))
    if values is None:
        # The graph's own healths, the very dict, in its order (the graph's own, made of its
        # results, is in theirs): the graph takes it.
        results = graph.results
        own = dict(zip(order, map(itemgetter(0), map(results.__getitem__, order)), strict=True))
        if len(own) != len(graph.own):
            raise ValueError("own healths that are not the graph's")
        graph = state["graph"] = graph._replace(own=own)
    else:
        own = dict(zip(order, _unpack_column(values), strict=True))
    kr_edges = packed["kr_edges"]
    kr_edges = list(chain.from_iterable(map(itemgetter(4), gave.values()))) \
        if kr_edges is None else list(_named(edges, kr_edges))
    edges_given = graph.edges if packed["edges"] is None else list(_named(edges, packed["edges"]))
    extra, dependencies = packed["edge_inputs"]
    fresh = packed["fresh"]
    if fresh is not None:
        fresh = list(zip(_unpack_column(fresh[0]), _ints(fresh[1]), strict=True))
    # The objectives: most often the rows kept, in their order (a copy of the dict).
    same = len(ids) == len(objectives) and ids == array("q", objectives)
    return _KeptOwn(
        _EPOCH + packed["now"] * _MICROSECOND, packed["elapsed"],
        objectives.copy() if same else dict(zip(ids, map(objectives.__getitem__, ids),
                                                strict=True)),
        gave, own, kr_edges, (_unpack_list(extra), _unpack_list(dependencies)),
        edges_given, packed["kr_given"],
        _unpack_dict(packed["own_progress"]), _unpack_list(packed["aligned"]), fresh)


def _pack_diffed(state, nodes, edges):
    diffed, rows, results = state["diffed"], state["rows"], state["graph"].results
    return {"objectives": _pack_same(diffed.objectives, rows.objectives, _ids),
            "key_results": _pack_same(diffed.key_results, rows.key_results, _ids),
            "results": _pack_same(diffed.results, results, nodes.indexes),
            "looked": (nodes.indexes(list(diffed.looked)),
                       _pack_column(list(diffed.looked.values())))}


def _unpack_diffed(packed, state, nodes):
    from .network import _Diffed

    rows, results = state["rows"], state["graph"].results
    looked, before = packed["looked"]
    return _Diffed(_unpack_same(packed["objectives"], rows.objectives, _ints),
                   _unpack_same(packed["key_results"], rows.key_results, _ints),
                   _unpack_same(packed["results"], results, partial(_named, nodes)),
                   dict(zip(_named(nodes, looked), _unpack_column(before), strict=True)))


def _pack_flows(state, nodes, edges):
    flows, own = state["flows"], state["own"]
    return {"objectives": _pack_same(flows.objectives, state["rows"].objectives, _ids),
            "nodes": (_ids(flows.nodes), _pack_rows(list(flows.nodes.values()))),
            "extra": _pack_list(flows.extra), "upper": _pack_dict(flows.upper_effective),
            # The very own progress of the own healths kept, when it is (the flows roll up
            # again only when it is not).
            "own_progress": (own is not None and flows.own_progress is own.own_progress,
                             _pack_dict(flows.own_progress)),
            "aligned": _pack_list(flows.aligned_key_results),
            "rolled": _pack_dict(flows.rolled),
            "above": marshal.dumps(flows.above), "impact": marshal.dumps(flows.impact),
            "written": _ids(sorted(flows.written))}


def _unpack_flows(packed, state):
    from .network import _KeptFlows

    ids, rows = packed["nodes"]
    same, own_progress = packed["own_progress"]
    own = state["own"]
    own_progress = own.own_progress if same and own is not None else _unpack_dict(own_progress)
    return _KeptFlows(_unpack_same(packed["objectives"], state["rows"].objectives, _ints),
                      dict(zip(_ints(ids), _unpack_rows(rows), strict=True)),
                      _unpack_list(packed["extra"]), _unpack_dict(packed["upper"]), own_progress,
                      _unpack_list(packed["aligned"]), _unpack_dict(packed["rolled"]),
                      marshal.loads(packed["above"]), marshal.loads(packed["impact"]),
                      set(_ints(packed["written"])))


# -- the row ---------------------------------------------------------------------------------

def _database():
    """Where the row versions come from: (system identifier and database oid, the 64-bit id of
    the next transaction, which allocates none) on PostgreSQL; the vendor elsewhere."""
    if connection.vendor != "postgresql":
        return connection.vendor, None
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT system_identifier FROM pg_control_system())::text || '/' "
                       "|| (SELECT oid FROM pg_database WHERE datname = current_database())::text,"
                       " pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        identity, xid = cursor.fetchone()
    return identity, xid


def _signature(organization_id, cycle_id, header, body):
    message = b"%d:%d:" % (organization_id, cycle_id) + header + body
    return salted_hmac(SALT, message, algorithm="sha256").digest()


@worker_process_init.connect
def _on_start(**kwargs):
    """A worker process that starts (each pool child after its fork; the worker itself with
    ``--pool solo``) reads back the newest saved states in a background thread, so that its
    first runs of them are warm runs (``network.warm_start``). Returns at once: Celery gives a
    child a few seconds to come up. It may also fork for the misalignment rules
    (``alignment.report.fork_rules``)."""
    from alignment.report import fork_rules

    from .network import warm_start

    fork_rules(settings.NETWORK_FORK_RULES)
    try:
        warm_start()
    except Exception:  # the worker comes up anyway: each first run reads back as before
        logger.exception("Could not start reading the saved network states back.")


@worker_process_shutdown.connect
def _on_shutdown(**kwargs):
    """A worker process that stops saves what it keeps, so that the next one starts from it."""
    from .network import save_kept

    try:
        save_kept()
    except Exception:  # the process is going away: never let this stop it
        logger.exception("Could not save the network state on shutdown.")


def due(cycle_id):
    """Whether this process should save the cycle's state after its run: it has neither saved
    nor restored it yet (its run computed from nothing), or last did ``SAVE_EVERY`` ago."""
    last = _saved.get(cycle_id)
    return last is None or time.monotonic() - last >= SAVE_EVERY


def save(cycle, state, nodes):
    """Replace the cycle's saved state with ``state`` (a dict of what ``network`` keeps).
    Returns the payload's size."""
    from .network import code_version

    started, cpu = time.perf_counter(), time.process_time()
    identity, xid = _database()
    parts = pack(state)
    packed = time.process_time()
    # (The rules' part, compressed already, goes through zlib again: at level 1 that still
    # takes a third off it, 1 MB at 100,000 nodes, for 50-80 ms here and 10 ms on restore.)
    body = zlib.compress(marshal.dumps(parts), 1)
    header = json.dumps({"format": FORMAT, "code": code_version(), "database": identity,
                         "xid": xid}, sort_keys=True).encode()
    mac = _signature(cycle.organization_id, cycle.pk, header, body)
    payload = MAGIC + mac + struct.pack(">I", len(header)) + header + body
    with scopes_disabled(), transaction.atomic():
        NetworkSnapshot.objects.bulk_create(
            [NetworkSnapshot(organization_id=cycle.organization_id, cycle_id=cycle.pk,
                             saved_at=timezone.now(), nodes=nodes, size=len(payload),
                             payload=payload)],
            update_conflicts=True, unique_fields=["cycle"],
            update_fields=["saved_at", "nodes", "size", "payload"])
    _saved[cycle.pk] = time.monotonic()
    stats.update(size=len(payload), save_ms=(time.perf_counter() - started) * 1000,
                 save_cpu_ms=(time.process_time() - cpu) * 1000,
                 pack_cpu_ms=(packed - cpu) * 1000)
    return len(payload)


def restore(cycle):
    """The state saved for ``cycle``, or None when there is none or it cannot be trusted.
    Its queries run in a savepoint: if they fail (the table not migrated yet, say), the run
    goes on from nothing."""
    started, cpu = time.perf_counter(), time.process_time()
    try:
        with scopes_disabled(), transaction.atomic():
            payload = (NetworkSnapshot.objects.filter(
                organization_id=cycle.organization_id, cycle_id=cycle.pk)
                .values_list("payload", flat=True).first())
            if payload is None:
                return None
            payload = bytes(payload)
            why = _untrusted(cycle, payload)
    except DatabaseError:
        logger.exception("Recompute of cycle %s: the saved network state could not be read.",
                         cycle.pk, extra={"organization": cycle.organization_id})
        return None
    if why is not None:
        logger.warning("Recompute of cycle %s of organization %s: the saved network state is "
                       "not used (%s); the run computes from nothing.", cycle.pk,
                       cycle.organization_id, why, extra={"organization": cycle.organization_id})
        return None
    read = time.perf_counter()
    size = struct.unpack(">I", payload[36:40])[0]
    try:
        state = unpack(marshal.loads(zlib.decompress(payload[40 + size:])))
    except Exception as e:  # signed by this code, so never expected: computed from nothing
        logger.error("Recompute of cycle %s: the saved network state does not load (%s).",
                     cycle.pk, e, extra={"organization": cycle.organization_id})
        return None
    _saved[cycle.pk] = time.monotonic()  # as fresh as a save: the next run need not save
    done = time.perf_counter()
    stats.update(size=len(payload), restore_ms=(done - started) * 1000,
                 restore_cpu_ms=(time.process_time() - cpu) * 1000,
                 read_ms=(read - started) * 1000)
    return state


def _untrusted(cycle, payload):
    """Why ``payload`` cannot be used for ``cycle``, or None."""
    from .network import code_version

    if len(payload) < 40 or not payload.startswith(MAGIC):
        return "not a saved state"
    mac, (size,) = payload[4:36], struct.unpack(">I", payload[36:40])
    header, body = payload[40:40 + size], payload[40 + size:]
    if not hmac.compare_digest(mac, _signature(cycle.organization_id, cycle.pk, header, body)):
        return "its signature does not match: damaged, or another cycle's"
    try:
        header = json.loads(header)
    except ValueError:
        return "unreadable header"
    if header.get("format") != FORMAT:
        return "another format"
    if header.get("code") != code_version():
        return "saved by another version of the code"
    identity, xid = _database()
    if header.get("database") != identity:
        return "saved in another database"
    if xid is not None and not 0 <= xid - (header.get("xid") or 0) < MAX_XID_AGE:
        return "too old: its row versions may have been reused"
    return None
