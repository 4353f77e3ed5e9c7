"""What the misalignment rules keep of a cycle's last run in this process, saved with the
network's state (``dependencies.snapshot``) and read back after a restart, so that the first run
after it computes only the findings a change reaches (``report._near``), as a warm run does.

What a run keeps (``rules.KEPT``, ``report._Kept``): the rules' objective rows with their
versions, the objects made of them (``built``) and of the key results, the stored untimed
findings by key with their row versions, and what they were computed from (``_Described``).
Each is checked by the next run against what it reads, whatever its age, as the process's own
is: rows by version, the small tables by value, the stored findings by the md5 of their
versions (``_Check.finding_versions``), the objects by the rows they were made of. So a copy is
as good as the process's own as long as it is what this code left: ``dependencies.snapshot``
signs it with the rest and checks the code version; ``unpack`` checks the rules' own
(``rules.code_version``, which covers the Python that compares titles) besides.

The encoding is that of ``snapshot``: flat columns, the objects made again from them with
C-level loops; a reference between parts (the rows of ``built``, the key results of
``key_results_of``, the ``_Described`` of the very objects kept) is saved as ids and read back
as the same object. A part whose references are not those (never, in a run that stored its
findings) is not saved: the next run runs every rule, as after a restart before.
"""

import logging
import marshal
import zlib
from collections import deque
from functools import partial
from itertools import chain, repeat
from operator import attrgetter, is_not, itemgetter

from dependencies.snapshot import (
    _ids,
    _ints,
    _lists,
    _pack_column,
    _pack_dict,
    _row_maker,
    _unpack_column,
    _unpack_dict,
)

from . import report, rules

logger = logging.getLogger(__name__)

_OBJECTIVE_FIELDS = ("id", "title", "team_id", "team", "team_kind", "parent_id", "is_local",
                     "state", "owner_id", "owner", "theme", "commitment", "also_parents")
_FINDING_FIELDS = ("rule", "severity", "message", "who", "objective_id", "dependency_id",
                   "key_result_id")
_new = object.__new__


def _columns(items, getter, width):
    """The columns of ``items`` (``getter`` gives each one's values as a tuple)."""
    items = list(items)
    if not items:
        return [_pack_column([]) for _ in range(width)]
    return [_pack_column(column) for column in zip(*map(getter, items), strict=True)]


def _uncolumns(columns):
    return zip(*map(_unpack_column, columns), strict=True)


_objective_values = attrgetter(*_OBJECTIVE_FIELDS)
_finding_values = attrgetter(*_FINDING_FIELDS)


def _objects(cls, fields, columns):
    """Objects of ``cls`` (``rules.Objective``, ``rules.Finding``, frozen dataclasses) of their
    fields' columns, as ``rules.objective`` makes one (the same object: equal, with the same
    hash), with C-level loops: each one's ``__dict__`` made by a dict display
    (``snapshot._row_maker``), then set as its ``__dict__``."""
    dicts = _row_maker(fields)(list(map(_unpack_column, columns)))
    objects = list(map(_new, repeat(cls, len(dicts))))
    deque(map(_set, objects, repeat("__dict__"), dicts), maxlen=0)
    return objects


_set = object.__setattr__  # past a frozen dataclass's own ``__setattr__``


def _pack_findings(findings):
    return _columns(findings, _finding_values, len(_FINDING_FIELDS))


def _unpack_findings(packed):
    return _objects(rules.Finding, _FINDING_FIELDS, packed)


def _pack_lists(table, item):
    """{id: list} as its ids, the lists' lengths and their items, flat (``item`` packs them)."""
    return _ids(table), _ids(map(len, table.values())), item(
        list(chain.from_iterable(table.values())))


def _unpack_lists(packed, item):
    ids, lengths, flat = packed
    return dict(zip(_ints(ids), map(list, _lists(_ints(lengths), item(flat))), strict=True))


def pack(kept):
    """What the rules keep of a cycle's last run in this process (``rules.KEPT``'s), as flat
    parts for ``marshal``; None when there is nothing to save."""
    if kept is None or not kept.objectives or kept.findings is None:
        return None
    rows = kept.objectives
    if list(kept.built) != list(rows) or any(map(
            is_not, map(itemgetter(0), kept.built.values()), rows.values())):
        return None  # objects not made of the rows kept: not this code's state
    built = list(kept.built.values())
    by_id = kept.key_results
    out = {
        "code": rules.code_version(),
        "objectives": _columns(rows.values(), tuple, len(next(iter(rows.values())))),
        "contexts": _pack_column(list(map(itemgetter(1), built))),
        "built": _columns(map(itemgetter(2), built), _objective_values, len(_OBJECTIVE_FIELDS)),
        "key_results": (_ids(by_id), _pack_column(list(map(itemgetter(0), by_id.values()))),
                        _columns(map(itemgetter(1), by_id.values()), tuple,
                                 len(rules.KeyResult._fields))),
        "findings": (_pack_column(list(kept.findings)),
                     _ids(map(len, kept.findings.values())),
                     _ids(map(itemgetter(0), chain.from_iterable(kept.findings.values()))),
                     _pack_column(list(map(itemgetter(1),
                                           chain.from_iterable(kept.findings.values()))))),
        "finding_versions": kept.finding_versions,
        "finding_pairs": (_ids(map(itemgetter(0), kept.finding_pairs or ())),
                          _pack_column(list(map(itemgetter(1), kept.finding_pairs or ()))),
                          kept.finding_pairs is None),
        "owners": None if kept.owners is None else _pack_dict(kept.owners),
        "small": marshal.dumps(kept.small),  # a few tuples of plain values
        "described": _pack_described(kept),
    }
    return out


def _pack_described(kept):
    d = kept.described
    if d is None or d.objectives is not kept.built or d.key_results is not kept.key_results:
        return None
    # Its key results by objective are saved by id: read back, the objects kept (equal to
    # these; a key result made again with the same values keeps the older object here).
    by_id = kept.key_results
    mine = list(chain.from_iterable(d.key_results_of.values()))
    ids = list(map(attrgetter("id"), mine))  # compared in C: equal, as ``!=`` compares them
    if mine != list(map(itemgetter(1), map(by_id.get, ids, repeat((None, None))))):
        return None
    return {"children": _pack_lists(d.children, _ids),
            "key_results_of": (_ids(d.key_results_of), _ids(map(len, d.key_results_of.values())),
                               _ids(ids)),
            "by_objective": _pack_lists(d.by_objective, _pack_findings),
            "shape": _pack_findings(d.shape),
            "settings": marshal.dumps(d.settings), "units": d.units}


def unpack(packed):
    """``pack``'s parts as the ``report._Kept`` they were; None when another version of the
    rules saved them."""
    if packed is None or packed["code"] != rules.code_version():
        return None
    rows = list(_uncolumns(packed["objectives"]))
    objectives = dict(zip(map(itemgetter(0), rows), rows, strict=True))
    built = dict(zip(objectives, zip(rows, _unpack_column(packed["contexts"]),
                                     _objects(rules.Objective, _OBJECTIVE_FIELDS,
                                              packed["built"]),
                                     strict=True), strict=True))
    ids, versions, columns = packed["key_results"]
    by_id = dict(zip(_ints(ids), zip(_unpack_column(versions), map(
        partial(tuple.__new__, rules.KeyResult), _uncolumns(columns)), strict=True),
        strict=True))
    keys, lengths, finding_ids, finding_versions = packed["findings"]
    pairs = list(zip(_ints(finding_ids), _unpack_column(finding_versions), strict=True))
    findings = dict(zip(_unpack_column(keys), map(list, _lists(_ints(lengths), pairs)),
                        strict=True))
    pair_ids, texts, no_pairs = packed["finding_pairs"]
    finding_pairs = None if no_pairs else list(zip(_ints(pair_ids), _unpack_column(texts),
                                                   strict=True))
    owners = None if packed["owners"] is None else _unpack_dict(packed["owners"])
    kept = report._Kept(objectives, built, findings, packed["finding_versions"], finding_pairs,
                        by_id, owners, None, marshal.loads(packed["small"]))
    d = packed["described"]
    if d is not None:
        kept.described = report._Described(
            built, by_id, _unpack_lists(d["children"], _ints),
            _unpack_lists(d["key_results_of"],
                          lambda flat: [by_id[pk][1] for pk in _ints(flat)]),
            _unpack_lists(d["by_objective"], _unpack_findings),
            _unpack_findings(d["shape"]), marshal.loads(d["settings"]), d["units"])
    return kept


# cycle id -> the saved rules' state read back (``save``'s bytes), not decoded yet: most runs
# after a restart (a check-in) do not run the rules, and the decoding costs half a second at
# 100,000 nodes. ``take`` decodes it when the rules first need it, unless a worker's warm start
# decoded it ahead, off the run (``decode``).
_SAVED = {}


def save(kept):
    """``pack``'s parts as bytes to save with the network's state (compressed), or None; the
    bytes read back and not decoded yet are saved again as they are."""
    if kept.__class__ is bytes:
        return kept
    packed = pack(kept)
    # Compressed apart: a restart that does not run the rules decompresses the rest alone.
    return None if packed is None else zlib.compress(marshal.dumps(packed), 1)


def kept_or_saved(cycle_id):
    """What to save of the cycle's rules (``save``): what the process keeps, else what it read
    back and has not decoded."""
    return rules.KEPT.get(cycle_id) or _SAVED.get(cycle_id)


def put(cycle_id, saved):
    """Give the process back the rules' state of the cycle (``save``'s bytes), to decode when
    the rules first need it (``take``)."""
    if cycle_id in rules.KEPT:  # the process's own (as good, whatever their ages)
        return
    _SAVED[cycle_id] = saved
    while len(_SAVED) > report.KEPT_CYCLES:  # (popped with a default: another thread may too)
        _SAVED.pop(next(iter(_SAVED), None), None)


def _decoded(cycle_id, saved):
    try:
        return unpack(marshal.loads(zlib.decompress(saved)))
    except Exception:  # signed by this code, so never expected: the rules run in full
        logger.exception("The saved rules' state of cycle %s does not load.", cycle_id)
        return None


def decode(cycle_id):
    """Decode the rules' state of the cycle read back (``put``) ahead of the run that needs it
    (a worker's warm start, ``dependencies.network.warm_start``); ``take`` then finds it so."""
    saved = _SAVED.get(cycle_id)
    if saved.__class__ is not bytes:
        return
    kept = _decoded(cycle_id, saved)
    if _SAVED.get(cycle_id) is saved:  # not taken meanwhile by a run
        if kept is None:
            _SAVED.pop(cycle_id, None)
        else:
            _SAVED[cycle_id] = kept


def take(cycle_id):
    """The rules' state of the cycle read back after a restart (``put``), decoded (here, or
    ahead by ``decode``) and kept as the process's own (``rules.KEPT``), or None. The units in
    memory, when there are none, become the cycle's (``report._near`` computes only what a
    change reached for the cycle whose units the process keeps): the first cycle whose rules a
    run needs, not the first read back (a worker's warm start reads several)."""
    saved = _SAVED.pop(cycle_id, None)
    if saved is None:
        return None
    units = rules.UNITS
    if units.cycle is None and not units.previous and not units.current:
        units.cycle = cycle_id
    kept = _decoded(cycle_id, saved) if saved.__class__ is bytes else saved
    if kept is not None:
        report._keep(cycle_id, kept)
    return kept


def forget():
    _SAVED.clear()
    report._DESCRIBED.clear()
    report._FINDINGS_DESCRIBED.clear()

