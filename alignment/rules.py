"""Misalignment detection: each rule is a pure function over one cycle's data that returns
findings. No Django here; ``alignment.report`` loads the data and runs them all.

How "the same words" is measured (copy-paste cascade, KR turned objective, overlapping
siblings): both titles are lowercased and punctuation is dropped. The score is the larger of
two numbers: difflib's ratio of matching characters (0 = nothing in common, 1 = identical),
and, when the shorter title has at least three words, the share of its words that the longer
one also uses. At or above ``SIMILAR`` (0.8) the child repeats its parent instead of saying how
the team contributes.

Cheap before exact: a large cycle compares ~150,000 pairs of titles, and difflib's own code
costs ~50 microseconds a pair. The score stays difflib's ratio, but for titles under 200
characters (where difflib treats no character as junk) the rules count its matches themselves
(``_matched``: the same blocks found the same way, without difflib's bookkeeping; a test holds
the two equal), and only after cheap upper bounds leave the answer open: the lengths, then the
longest common subsequence (difflib never matches more characters), counted in C by rapidfuzz.
A rule that compares one title with many (``_could_match``, ``_could_be_alike``) counts the
subsequences of the whole list in one call, so most pairs cost no Python at all. ``alike``,
for a rule that needs a yes or no, also has lower bounds that can say yes before the count
(the common prefix, then the common suffix, see ``_score``). The findings are exactly those of
comparing every pair with difflib.
"""

import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from functools import partial
from operator import attrgetter
from typing import NamedTuple

from rapidfuzz import process
from rapidfuzz.distance import LCSseq, Postfix, Prefix

HIGH, MEDIUM, LOW = "high", "medium", "low"
SEVERITY_ORDER = {HIGH: 0, MEDIUM: 1, LOW: 2}
SIMILAR = 0.8
MAX_COMPANY_OBJECTIVES_PER_TEAM = 2
BOTTLENECK_OBJECTIVES = 5
STALE_DAYS = 14


@dataclass(frozen=True)
class Objective:
    id: int
    title: str
    team_id: int
    team: str
    team_kind: str  # company / department / team
    parent_id: int | None = None
    is_local: bool = False
    state: str = "published"
    owner_id: int | None = None  # the lead of its team
    owner: str = ""
    theme: str = ""
    commitment: str = "committed"  # or aspirational
    also_parents: tuple = ()  # the parents it contributes to besides ``parent_id``


class KeyResult(NamedTuple):
    """A named tuple rather than a frozen dataclass: a run from nothing makes one per key
    result (75,000 at 100,000 nodes), and a tuple costs a fraction of it to make."""

    id: int
    objective_id: int
    title: str
    created_at: datetime | None = None
    last_check_in_at: datetime | None = None
    owner_team: str = ""  # when another team than the objective's owns it


def objective(id, title, team_id, team, team_kind, parent_id, is_local, state, owner_id, owner,
              theme, commitment, also_parents):
    """``Objective(...)`` made without the generated ``__init__``, which sets each field of a
    frozen dataclass through ``object.__setattr__`` (three times the cost; a run from nothing
    makes one per objective). The same object: equal, with the same hash."""
    o = _new(Objective)
    o.__dict__.update(id=id, title=title, team_id=team_id, team=team, team_kind=team_kind,
                      parent_id=parent_id, is_local=is_local, state=state, owner_id=owner_id,
                      owner=owner, theme=theme, commitment=commitment, also_parents=also_parents)
    return o


def key_result(id, objective_id, title, owner_team):
    """``KeyResult(...)`` with no dates, made without the keywords' parsing (one per key
    result)."""
    return _new_tuple(KeyResult, (id, objective_id, title, None, None, owner_team))


_new, _new_tuple = object.__new__, tuple.__new__


@dataclass(frozen=True)
class Dependency:
    id: int
    status: str
    created_at: datetime
    requesting_team: str
    providing_team: str
    need: str


@dataclass
class Cycle:
    objectives: list
    key_results: list = field(default_factory=list)
    dependencies: list = field(default_factory=list)
    alignment_model: str = "flexible"  # strict / flexible / thematic
    local_share_limit: float = 0.35
    escalate_after_days: int = 5
    now: datetime | None = None


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    who: str  # who should act
    objective_id: int | None = None
    dependency_id: int | None = None
    key_result_id: int | None = None


TITLES = {
    "too_many": "Too many company objectives",
    "orphan": "Orphan objective",
    "strict_local": "Local in the strict model",
    "too_local": "Too many local objectives",
    "copy_paste": "Copy-paste cascade",
    "kr_as_objective": "Key result turned objective",
    "sibling_overlap": "Overlapping objectives",
    "metric_objective": "Objective is a metric",
    "task_key_result": "Key result is a task",
    "over_cascading": "Over-cascading",
    "coverage_gap": "Coverage gap",
    "bottleneck": "Bottleneck",
    "stale": "Stale key result",
    "unowned_dependency": "Unanswered dependency",
    "commitment_mix": "No mix of committed and aspirational",
}


_PUNCTUATION_RE = re.compile(r"[^\w\s$%]")


def _normal(text):
    return " ".join(_PUNCTUATION_RE.sub(" ", text.lower()).split())


def similarity(a, b):
    a, b = _normal(a), _normal(b)
    score = SequenceMatcher(None, a, b).ratio()
    words_a, words_b = set(a.split()), set(b.split())
    shorter = min(words_a, words_b, key=len)
    if len(shorter) >= 3:
        score = max(score, len(words_a & words_b) / len(shorter))
    return score


class _Title:
    """A title prepared once for many comparisons: normalized, and its words."""

    __slots__ = ("text", "words")

    def __init__(self, title, text=None):
        self.text = _normal(title) if text is None else text
        self.words = frozenset(self.text.split())


# The titles prepared during one run of the rules (``run_all`` empties it at its end): the
# three similarity rules compare the same titles.
_CACHE = {}


def _prepared(titles, cache):
    """The titles prepared (``_Title``), each once per cache. The new ones are normalized in
    one pass of the pattern over all of them (a call per title costs more than the work)."""
    try:
        return [cache[t] for t in titles]  # all prepared already (a run from nothing: ``_cold``)
    except KeyError:
        pass
    new = [t for t in dict.fromkeys(titles) if t not in cache]
    if new:
        joined = "\n".join(new).lower()
        lines = joined.split("\n")
        if len(lines) == len(new):  # no title holds a line break: one line per title
            lines = _PUNCTUATION_RE.sub(" ", joined).split("\n")
            for title, line in zip(new, lines, strict=True):
                cache[title] = _Title(title, " ".join(line.split()))
        else:
            for title in new:
                cache[title] = _Title(title)
    return [cache[t] for t in titles]


def _lcs_length(a, b):
    """Length of the longest common subsequence of two prepared titles (rapidfuzz, in C)."""
    return _lcs(a.text, b.text)


_lcs = LCSseq.similarity


def similar(a, b, at_least=SIMILAR, *, cache=None):
    """``similarity(a, b)`` when it is at least ``at_least``, else None; difflib runs only when
    the cheap bounds leave the answer open. ``cache`` (a dict kept for one run) prepares each
    title once."""
    return _compare(a, b, at_least, cache, exact=True)


def alike(a, b, at_least=SIMILAR, *, cache=None):
    """Whether ``similarity(a, b)`` is at least ``at_least``, for a rule that needs only the
    answer, not the score: besides the upper bounds of ``similar``, lower bounds can say yes
    without difflib."""
    return _compare(a, b, at_least, cache, exact=False) is not None


def _compare(a, b, at_least, cache, *, exact):
    cache = _CACHE if cache is None else cache
    a = cache.get(a) or _prepared((a,), cache)[0]
    b = cache.get(b) or _prepared((b,), cache)[0]
    return _score(a, b, at_least, exact=exact)


def _score(a, b, at_least, *, exact):
    """``_compare`` of two prepared titles."""
    words_a, words_b = a.words, b.words
    shorter = min(len(words_a), len(words_b))
    score = len(words_a & words_b) / shorter if shorter >= 3 else 0.0
    text_a, text_b = a.text, b.text
    la, lb = len(text_a), len(text_b)
    total = la + lb
    if not total:
        return 1.0 if 1.0 >= at_least else None  # two empty titles: difflib says 1.0
    if not exact and score >= at_least:
        return score
    # Upper bounds of difflib's ratio (2 * matched characters / total), the cheaper first:
    # difflib matches at most the shorter title's length, and at most a longest common
    # subsequence.
    ceiling = 2 * min(la, lb) / total
    if ceiling <= score or ceiling < at_least:
        return score if score >= at_least else None
    ceiling = 2 * _lcs(text_a, text_b) / total
    if ceiling <= score or ceiling < at_least:
        return score if score >= at_least else None
    if la < _AUTOJUNK and lb < _AUTOJUNK:
        prefix = _prefix_block(text_a, text_b)
        rest_a, rest_b = text_a[prefix:], text_b[prefix:]
        if prefix and not exact:
            # A lower bound, enough for a yes: difflib matches the prefix, then on its right at
            # least the common suffix, and at least one character when any is common.
            least = prefix + max(Postfix.similarity(rest_a, rest_b),
                                 not set(rest_a).isdisjoint(rest_b))
            if 2.0 * least / total >= at_least:
                return 2.0 * least / total
        matched = prefix + _matched(rest_a, rest_b)
        score = max(score, 2.0 * matched / total)  # as ``SequenceMatcher.ratio`` computes it
    else:
        score = max(score, SequenceMatcher(None, text_a, text_b).ratio())
    return score if score >= at_least else None


def _matched(a, b):
    """The number of characters ``SequenceMatcher(None, a, b)`` matches, for texts shorter
    than ``_AUTOJUNK`` (where difflib treats no character as junk or popular), found as difflib
    finds them: the longest common block (the first in ``a``, then in ``b``), then the same on
    each side of it. difflib's own code does more (junk, popular characters, a named tuple per
    block, the blocks sorted and merged) and costs ten times this on a short title; the bounds
    test holds the two equal on thousands of pairs."""
    if prefix := _prefix_block(a, b):
        return prefix + _matched(a[prefix:], b[prefix:])
    b2j = {}
    for j, ch in enumerate(b):
        b2j.setdefault(ch, []).append(j)
    matched, queue = 0, [(0, len(a), 0, len(b))]
    while queue:
        alo, ahi, blo, bhi = queue.pop()
        besti = bestj = size = 0
        j2len = {}
        for i in range(alo, ahi):
            longer = {}
            for j in b2j.get(a[i], ()):
                if j < blo:
                    continue
                if j >= bhi:
                    break
                k = longer[j] = j2len.get(j - 1, 0) + 1
                if k > size:
                    besti, bestj, size = i - k + 1, j - k + 1, k
            j2len = longer
        if size:
            matched += size
            if alo < besti and blo < bestj:
                queue.append((alo, besti, blo, bestj))
            if besti + size < ahi and bestj + size < bhi:
                queue.append((besti + size, ahi, bestj + size, bhi))
    return matched


def _prefix_block(a, b):
    """The length of the common prefix of two texts when it is difflib's first block (no
    common block is longer: then it starts first in both), else 0. What is left is on its
    right: a title and its near copy ("Team goal 3584", "Team goal 5395") cost a few
    characters' work."""
    prefix = Prefix.similarity(a, b)
    if prefix:
        n = prefix + 1
        starts = {a[i:i + n] for i in range(len(a) - prefix)}
        if any(b[j:j + n] in starts for j in range(len(b) - prefix)):
            return 0
    return prefix


def _could_be_alike(titles, others, at_least=SIMILAR):
    """The pairs (i, j) of positions in two lists of prepared titles whose similarity could
    reach ``at_least`` (``_could_match``, from each title of the shorter list); every other
    pair surely does not (``alike`` would say no)."""
    if len(titles) <= len(others):
        return {(i, j) for i, t in enumerate(titles) for j in _could_match(t, others, at_least)}
    return {(i, j) for j, t in enumerate(others) for i in _could_match(t, titles, at_least)}


def _could_match(title, others, at_least=SIMILAR):
    """The positions, in order, of the prepared titles of ``others`` whose similarity with the
    prepared ``title`` could reach ``at_least``; the others' surely does not. By the
    characters: the longest common subsequence (an upper bound of difflib's matches), counted
    by rapidfuzz in C. By the words: the share of the shorter title's words that the other
    holds, when both hold three or more."""
    size, text = len(title.text), title.text
    if len(others) <= _FEW:  # a call per pair costs less than one for the list, for a few
        found = {m for m, o in enumerate(others) if not (size or o.text) or 2 * LCSseq.similarity(
            text, o.text) / (size + len(o.text)) >= at_least}
    else:
        # The whole list in one call, which skips in C the titles whose subsequence is too
        # short for the share even against an empty title (rounded down, and one less against
        # a float's rounding: rapidfuzz compares integers).
        least = max(0, int(at_least * size / 2) - 1)
        found = {m for other, lcs, m in process.extract(
            text, [o.text for o in others], scorer=LCSseq.similarity, processor=None,
            limit=None, score_cutoff=least)
            if not (size or other) or 2 * lcs / (size + len(other)) >= at_least}
    words = title.words
    if len(words) >= 3:
        # Both hold three words or more, so a share of at least ``at_least`` needs at least
        # ``3 * at_least`` words in common: the cheap test first.
        need = 3 * at_least
        found.update(m for m, o in enumerate(others) if len(words & o.words) >= need
                     and len(o.words) >= 3
                     and len(words & o.words) / min(len(words), len(o.words)) >= at_least)
    return sorted(found)


_FEW = 8  # a call per pair costs less than one call for the list, for this many or fewer
_AUTOJUNK = 200  # difflib treats frequent characters as junk in a text this long or longer


# What several rules derive from the same cycle (its live objectives, by id, its team
# objectives, the live children of each objective): made once per ``run_all`` rather than once
# per rule (at 100,000 nodes each pass over the cycle costs). ``run_all`` sets the cycle it
# runs on and empties it at its end; a rule called alone derives them itself. The rules only
# read what they get from here.
_DERIVED = {}


def _derived(cycle, name, make):
    if _DERIVED.get("cycle") is not cycle:
        return make(cycle)
    found = _DERIVED.get(name)
    if found is None:
        found = _DERIVED[name] = make(cycle)
    return found


def _live(cycle):
    return _derived(cycle, "live", lambda c: [o for o in c.objectives if o.state != "retired"])


def _live_by_id(cycle):
    return _derived(cycle, "by_id", lambda c: {o.id: o for o in _live(c)})


def _team_objectives(cycle):
    return _derived(cycle, "team",
                    lambda c: [o for o in _live(c) if o.team_kind != "company"])


def orphans(cycle):
    if cycle.alignment_model == "thematic":
        return [Finding("orphan", HIGH, f"“{o.title}” picks no company theme and is not "
                        "marked local.", o.team, o.id)
                for o in _team_objectives(cycle) if not o.theme and not o.is_local]
    by_id = _live_by_id(cycle)
    return [Finding("orphan", HIGH, f"“{o.title}” contributes to no objective and is not "
                    "marked local: nobody can see what it serves.", o.team, o.id)
            for o in _team_objectives(cycle)
            if not o.is_local and (o.parent_id is None or o.parent_id not in by_id)]


def strict_local(cycle):
    """The strict model allows no local objective, and new ones are refused; but objectives
    that were local before the organization switched to strict stay local until their teams
    align them. They are reported here, since "too local" counts nothing in this model."""
    if cycle.alignment_model != "strict":
        return []
    return [Finding("strict_local", HIGH, f"“{o.title}” is marked local, but this organization "
                    "aligns strictly: every team objective contributes to a parent. Align it, "
                    "or retire it.", o.team, o.id)
            for o in _team_objectives(cycle) if o.is_local]


def too_local(cycle):
    if cycle.alignment_model == "strict":
        return []
    limit = cycle.local_share_limit
    findings = []
    teams = {}
    for o in _team_objectives(cycle):
        teams.setdefault((o.team_id, o.team), []).append(o)
    for (_, name), objectives in sorted(teams.items(), key=lambda t: t[0][1]):
        local = sum(1 for o in objectives if o.is_local)
        if objectives and local / len(objectives) > limit:
            findings.append(Finding(
                "too_local", MEDIUM, f"{name}: {local} of {len(objectives)} objectives are "
                f"local ({round(100 * local / len(objectives))}%, the limit is "
                f"{round(100 * limit)}%).", name))
    everything = _team_objectives(cycle)
    local = sum(1 for o in everything if o.is_local)
    if everything and local / len(everything) > limit:
        findings.append(Finding(
            "too_local", HIGH, f"The organization: {local} of {len(everything)} team objectives "
            f"are local ({round(100 * local / len(everything))}%, the limit is "
            f"{round(100 * limit)}%).", "Alignment lead"))
    return findings


class _Units:
    """What a rule found for one unit of its input (a sibling family, an objective with its
    parent's titles), kept from one run to the next in this process, keyed by everything the
    unit's result depends on: the key is the input itself, so a hit is the result the rule
    would compute again, and only the units whose input changed are computed. A run keeps the
    units it used (``rotate``, at the end of ``run_all``): the rest go, so the memory stays
    about one cycle's worth of units.

    The units of the similarity rules (``STORED_KINDS``) are also kept in the database, one row
    per cycle (``alignment.report``, ``models.RuleUnits``), by the md5 of their key salted with
    the organization, the cycle and the code (``digest``): a new process, or a run of another
    cycle, looks a unit up there (``stored``, read back for one run) before computing it. A hit
    there too is the result of exactly that input."""

    def __init__(self):
        self.current, self.previous = {}, {}
        self.stored = {}  # digest -> the stored form of a unit's result (``_encode``)
        self.salt = ""
        self.computed = 0  # units of ``STORED_KINDS`` computed (found nowhere) since ``rotate``
        self.restored = 0  # ... and found in ``stored``
        self.cycle = None  # the cycle of the last run (``alignment.report`` sets it)
        self.last = (0, 0)
        # cycle id -> units computed since its stored row was read or written (None: no row)
        self.unsaved = {}
        self.checksums = {}  # cycle id -> the checksum of its row as last read or written

    def get(self, key, compute):
        return self.call(key, compute)

    def call(self, key, compute, *args):
        """The unit's result: kept by this process, else stored, else ``compute(*args)``."""
        found = self.current.get(key, _MISSING)
        if found is _MISSING:
            found = self.previous.get(key, _MISSING)
            if found is _MISSING:
                if self.stored and key[0] in STORED_KINDS:
                    found = self._restore(key)
                if found is _MISSING:
                    found = compute(*args)
                    if key[0] in STORED_KINDS:
                        self.computed += 1
            self.current[key] = found
        return found

    def digest(self, key):
        return hashlib.md5(f"{self.salt}\n{key!r}".encode()).hexdigest()

    def _restore(self, key):
        value = self.stored.get(self.digest(key), _MISSING)
        if value is _MISSING:
            return _MISSING
        try:
            found = _decode(key, value)
        except (TypeError, ValueError, IndexError, KeyError):
            return _MISSING  # not what this code stores: computed again
        self.restored += 1
        return found

    def to_store(self):
        """The units of ``STORED_KINDS`` the last run used (after ``rotate``), as ``{digest:
        stored form}``."""
        return {self.digest(key): _encode(key, value) for key, value in self.previous.items()
                if key[0] in STORED_KINDS}

    def rotate(self):
        self.previous, self.current = self.current, {}
        self.stored = {}
        self.last = (self.computed, self.restored)  # what the run that ends computed, restored
        self.computed = self.restored = 0

    def merge(self):
        """After a run over some units of the cycle only (``run_for``): the units it used are
        kept with those the last run kept (which the rest of the cycle still uses)."""
        self.previous.update(self.current)
        self.current = {}
        self.stored = {}
        self.last = (self.computed, self.restored)  # what the run that ends computed, restored
        self.computed = self.restored = 0

    def clear(self):
        self.current, self.previous = {}, {}
        self.stored = {}
        self.computed = self.restored = 0
        self.cycle = None
        self.unsaved = {}
        self.checksums = {}


# The units kept in the database: those of the rules that compare titles (their first
# computation is most of the rules' cost), one per parent objective each. Each is stored in a
# small form (``_encode``; None when it found nothing) and rebuilt from its key (``_decode``):
# the children's scores, the position of each child's similar key result, the pairs of
# siblings that repeat each other.
STORED_KINDS = ("copy_paste", "kr_as_objective", "sibling_overlap")


def _encode(key, value):
    if key[0] == "sibling_overlap":
        return [list(pair) for pair in value[0]] or None
    if key[0] == "kr_as_objective":  # the position of each child's similar key result
        value = [None if title is None else key[1].index(title) for title in value]
    return value if any(v is not None for v in value) else None  # copy_paste: the scores


def _decode(key, value):
    kind, size = key[0], len(key[2])
    if kind == "copy_paste":
        if value is None:
            return (None,) * size
        if len(value) != size or not all(v is None or (
                type(v) is float and SIMILAR <= v <= 1.0) for v in value):
            raise ValueError(value)
        return tuple(value)
    if kind == "kr_as_objective":
        if value is None:
            return (None,) * size
        if len(value) != size:
            raise ValueError(value)
        return tuple(None if i is None else key[1][_index(i)] for i in value)
    pairs = tuple((_index(i), _index(j)) for i, j in (value or ()))
    siblings = key[2]
    return pairs, _overlap_findings(key[1], [siblings[i] for i, _ in pairs],
                                    [siblings[j] for _, j in pairs])


def _index(value):
    if type(value) is not int or value < 0:
        raise ValueError(value)
    return value


def code_version():
    """What the stored units' results depend on besides their keys: this module's source and
    the Python that runs difflib."""
    global _CODE
    if _CODE is None:
        with open(__file__, "rb") as source:
            _CODE = hashlib.md5(source.read() + sys.version.encode()).hexdigest()
    return _CODE


_CODE = None
_MISSING = object()
UNITS = _Units()
# What ``alignment.report`` keeps of each cycle's last run in this process (the rules' inputs by
# row version, the findings it stored): plain data, dropped with the units.
KEPT = {}


def forget():
    """Drop what the rules kept between runs in this process: the next run reads every row and
    computes every unit it does not find stored."""
    UNITS.clear()
    KEPT.clear()
    _CACHE.clear()


def _children(cycle):
    """The live objectives, and the live children of each live objective that has some, in
    the order of the objectives."""
    return _live(cycle), _live_by_id(cycle), _derived(cycle, "children", _make_children)


def _make_children(cycle):
    by_id, children = _live_by_id(cycle), {}
    for o in _live(cycle):
        if o.parent_id in by_id:
            children.setdefault(o.parent_id, []).append(o)
    return children


def copy_paste(cycle):
    live, by_id, children = _children(cycle)
    scores = {}
    for parent_id, kids in children.items():
        # A unit: the parent's title and its children's titles, in order (each score depends
        # on its pair of titles alone).
        parent_title, titles = by_id[parent_id].title, tuple(o.title for o in kids)
        found = UNITS.call(("copy_paste", parent_title, titles), _scores, parent_title, titles)
        scores.update((o.id, score) for o, score in zip(kids, found, strict=True)
                      if score is not None)
    findings = []
    for o in live:
        if (score := scores.get(o.id)) is not None:
            parent = by_id[o.parent_id]
            findings.append(Finding(
                "copy_paste", MEDIUM, f"“{o.title}” repeats its parent “{parent.title}” "
                f"({round(score * 100)}% the same words). Say how {o.team} contributes "
                "instead.", o.team, o.id))
    return findings


def _scores(parent_title, titles):
    parent = _prepared((parent_title,), _CACHE)
    maybe = {i for i, _ in _could_be_alike(_prepared(titles, _CACHE), parent)}
    return tuple(similar(title, parent_title, cache=_CACHE) if i in maybe else None
                 for i, title in enumerate(titles))


def kr_as_objective(cycle):
    live, by_id, children = _children(cycle)
    krs_of = {}
    for k in cycle.key_results:
        if k.objective_id in children:
            krs_of.setdefault(k.objective_id, []).append(k.title)
    repeated = {}
    for parent_id, kr_titles in krs_of.items():
        # A unit: the parent's key results' titles and its children's titles, in order.
        kids, kr_titles = children[parent_id], tuple(kr_titles)
        titles = tuple(o.title for o in kids)
        found = UNITS.call(("kr_as_objective", kr_titles, titles), _firsts_similar, titles,
                           kr_titles)
        repeated.update((o.id, title) for o, title in zip(kids, found, strict=True)
                        if title is not None)
    findings = []
    for o in live:
        if (title := repeated.get(o.id)) is not None:
            findings.append(Finding(
                "kr_as_objective", MEDIUM, f"“{o.title}” repeats the parent's key result "
                f"“{title}”. A key result measures; the objective should say what the "
                "team wants to achieve.", o.team, o.id))
    return findings


def _firsts_similar(titles, kr_titles):
    """For each title, the first of the key results' titles it is ``alike``, or None."""
    maybe = {}
    for i, j in _could_be_alike(_prepared(titles, _CACHE), _prepared(kr_titles, _CACHE)):
        maybe.setdefault(i, []).append(j)
    return tuple(_first_similar(title, [kr_titles[j] for j in sorted(maybe[i])], _CACHE)
                 if i in maybe else None for i, title in enumerate(titles))


def _first_similar(title, titles, cache):
    for other in titles:
        if alike(title, other, cache=cache):
            return other
    return None


# Words too common to say what an objective is about.
_FILLER = frozenset("""
    a all an and are as at be by for from in into is it its more new of on or our so that the
    their this to up us we with
""".split())


def _stems(title):
    """The words of a prepared title that say what it is about, cut to four letters (so
    "grow" and "growing" meet)."""
    return {w[:4] for w in title.words if len(w) > 2 and w not in _FILLER}


def sibling_overlap(cycle):
    """Objectives of different teams aligned to the same parent whose titles say the same thing
    (``alike``: the measure of the copy-paste cascade): two teams chasing one goal apart, where
    one shared objective would do. Only siblings that share a word (``_stems``) are compared,
    found through an index of their words rather than pair by pair. Each objective is reported
    once, with the first sibling it repeats; a pair whose two objectives are both reported
    already is not compared again."""
    live = _live_by_id(cycle)
    families = {}
    for o in _team_objectives(cycle):
        if o.parent_id in live and not o.is_local:
            families.setdefault(o.parent_id, []).append(o)
    findings, cache = [], _CACHE
    for parent_id, siblings in families.items():
        if len(siblings) < 2 or len({o.team_id for o in siblings}) < 2:
            continue
        siblings.sort(key=lambda o: o.id)
        # A unit: the family (its parent's title, and each sibling's id, title and team).
        key = ("sibling_overlap", live[parent_id].title,
               tuple((o.id, o.title, o.team_id, o.team) for o in siblings))
        findings += UNITS.get(key, partial(_family_overlap, live[parent_id], siblings, cache))[1]
    return findings


def _family_overlap(parent, siblings, cache):
    """The overlap of one family of siblings (sorted by id): the pairs of positions (i, j)
    where the i-th sibling repeats the j-th, in the order of i, and their findings."""
    prepared = _prepared([o.title for o in siblings], cache)
    stems_of = list(map(_stems, prepared))
    teams = [o.team_id for o in siblings]
    repeats = {}
    if len(siblings) <= _FEW:
        # A few siblings (most families): each pair in order, asked directly.
        for i, a in enumerate(prepared):
            stems, team = stems_of[i], teams[i]
            for j in range(i + 1, len(siblings)):
                if teams[j] == team or stems.isdisjoint(stems_of[j]) \
                        or (i in repeats and j in repeats):
                    continue
                if _score(a, prepared[j], SIMILAR, exact=False) is not None:
                    repeats.setdefault(i, j)
                    repeats.setdefault(j, i)
        return _overlap_of(parent, siblings, repeats)
    by_stem = {}
    for i, stems in enumerate(stems_of):
        for stem in stems:
            by_stem.setdefault(stem, []).append(i)
    # The pairs (i, j), i < j, that share a stem, in that order, made one i at a time: a
    # family of a thousand siblings that all share a word would otherwise make half a
    # million pairs first, most of them skipped once both ends are reported.
    unreported = set(range(len(siblings)))
    for i, a in enumerate(prepared):
        if not unreported:
            break  # every pair left has both ends reported
        if not stems_of[i]:
            continue
        others = set().union(*(by_stem[stem] for stem in stems_of[i]))
        if i not in unreported:
            others &= unreported
        team = teams[i]
        others = [j for j in sorted(others) if j > i and teams[j] != team]
        if len(others) > _FEW:
            # Only the siblings that could repeat this one (``_could_match``, one call for
            # all): ``alike`` says no to the others. For a few, ``_score`` alone costs less
            # (it starts with the same bounds), and a pair skipped below costs nothing.
            others = [others[k] for k in _could_match(a, [prepared[j] for j in others])]
        for j in others:
            if i in repeats and j in repeats:
                continue
            if _score(a, prepared[j], SIMILAR, exact=False) is not None:
                repeats.setdefault(i, j)
                repeats.setdefault(j, i)
                unreported.discard(i)
                unreported.discard(j)
    return _overlap_of(parent, siblings, repeats)


def _overlap_of(parent, siblings, repeats):
    """``_family_overlap``'s answer from the sibling each reported one repeats."""
    pairs = tuple(sorted(repeats.items()))
    return pairs, _overlap_findings(
        parent.title, [(siblings[i].id, siblings[i].title, None, siblings[i].team)
                       for i, _ in pairs],
        [(None, siblings[j].title, None, siblings[j].team) for _, j in pairs])


def _overlap_findings(parent_title, objectives, others):
    """The findings of the objectives that repeat a sibling, (id, title, team id, team) each,
    with the sibling each repeats."""
    return tuple(_finding(
        "sibling_overlap", MEDIUM, f"“{title}” ({team}) and “{other_title}” ({other_team}) say "
        f"the same thing under “{parent_title}”. Share one objective between the two teams, or "
        "say how each contributes in its own way.", f"{team} and {other_team}", pk)
        for (pk, title, _, team), (_, other_title, _, other_team) in zip(
            objectives, others, strict=True))


def _finding(rule, severity, message, who, objective_id):
    """``Finding(rule, severity, message, who, objective_id)``, made as ``objective`` is: the
    overlap rule rebuilds a finding per objective it reports from its stored units (23,000 at
    100,000 nodes)."""
    f = _new(Finding)
    f.__dict__.update(rule=rule, severity=severity, message=message, who=who,
                      objective_id=objective_id, dependency_id=None, key_result_id=None)
    return f


# The first word of a key result that describes work to do rather than a result to reach.
# ("Add" and "move" are left out: "Add 300 paying customers" is a result.)
TASK_VERBS = frozenset("""
    build complete conduct create define deliver deploy design develop document draft finalise
    finalize finish hire hold host implement install integrate introduce kick launch migrate
    organise organize prepare publish rebuild redesign refactor release replace rewrite roll run
    set ship start train update upgrade write
""".split())
# ...unless the title names a level to reach: a share, "from X to Y", "under 2 s".
_MEASURE = re.compile(
    r"\d+(?:[.,]\d+)?\s*%"
    r"|\bfrom\s+\S*\d\S*\s+to\s+\S*\d"
    r"|\b(?:under|below|above|over|within|at least|at most)\s+\S*\d",
    re.IGNORECASE)


def _first_word(title):
    words = title.split(None, 1)
    return words[0].lower().strip(_PUNCTUATION) if words else ""


_PUNCTUATION = "\"'“”‘’()[].,:;!?-"


def task_key_result(cycle):
    """A key result that names a task ("Ship the new bundle pipeline", "Launch X"): its first
    word is a verb of doing (``TASK_VERBS``) and it names no level to reach (``_MEASURE``).
    Done or not done says the work happened, not that anything changed for anyone."""
    live = _live_by_id(cycle)
    findings = []
    for k in cycle.key_results:
        if _first_word(k.title) not in TASK_VERBS:  # most key results: asked first
            continue
        o = live.get(k.objective_id)
        if o is None or _MEASURE.search(k.title):
            continue
        findings.append(Finding(
            "task_key_result", LOW, f"“{k.title}” describes a task, not a result. Measure what "
            "the task should change (who uses it, what gets faster or more reliable) and keep "
            "the task in the team's plan.", k.owner_team or o.team, o.id, key_result_id=k.id))
    return findings


_METRIC = re.compile(
    r"\d+(?:[.,]\d+)?\s*%"  # 30%
    r"|[$€£]\s*\d"  # $12M
    r"|\b\d+(?:[.,]\d+)?\s*(?:k|m|bn|x)\b"  # 40k, 3x
    r"|\bfrom\s+\S*\d\S*\s+to\s+\S*\d",  # from 40 to 55
    re.IGNORECASE)


# What every alternative of ``_METRIC`` needs somewhere in the title: a share sign, a
# currency, a digit before a unit, or "from". Most titles have none, and this search costs a
# fraction of ``_METRIC``'s.
_METRIC_HINT = re.compile(r"[%$€£]|\d\s*[kmbx]|from", re.IGNORECASE)


def _names_metric(title):
    return _METRIC_HINT.search(title) is not None and _METRIC.search(title) is not None


def metric_objective(cycle):
    # No unit per title: its quick look (``_METRIC_HINT``) costs less than a unit's lookup.
    return [Finding("metric_objective", LOW, f"“{o.title}” reads like a number to hit. Put the "
                    "number in a key result and let the objective say why it matters.",
                    o.team, o.id)
            for o in _live(cycle) if _names_metric(o.title)]


def _all_roots(cycle):
    """{objective id: ids of the roots it reaches through every parent link, the primary one
    and the extra ones}: an objective with several parents can reach several roots."""
    by_id = _live_by_id(cycle)
    memo, path = {}, set()  # path: the objectives the search came through, to stop a loop

    def find(o):
        found = memo.get(o.id)
        if found is None:
            parents = [by_id[p] for p in ((o.parent_id, *o.also_parents) if o.also_parents
                                          else (o.parent_id,))
                       if p in by_id and p not in path]
            if not parents:
                found = {o.id}
            else:
                path.add(o.id)
                # One parent (most objectives): its roots, the very set (nobody changes it).
                found = (find(parents[0]) if len(parents) == 1
                         else set().union(*[find(p) for p in parents]))
                path.discard(o.id)
            memo[o.id] = found
        return found

    return {o.id: find(o) for o in by_id.values()}, by_id


def over_cascading(cycle):
    roots, by_id = _all_roots(cycle)
    teams = {}
    for o in _team_objectives(cycle):
        for r in roots[o.id]:
            if by_id[r].team_kind == "company" and r != o.id:
                teams.setdefault(o.team, set()).add(r)
    return [Finding("over_cascading", MEDIUM, f"{team} contributes to {len(ids)} company "
                    f"objectives; more than {MAX_COMPANY_OBJECTIVES_PER_TEAM} spreads it thin.",
                    team)
            for team, ids in sorted(teams.items()) if len(ids) > MAX_COMPANY_OBJECTIVES_PER_TEAM]


MAX_COMPANY_OBJECTIVES = 5


def too_many_company_objectives(cycle):
    company = [o for o in _live(cycle) if o.team_kind == "company"]
    if len(company) <= MAX_COMPANY_OBJECTIVES:
        return []
    return [Finding("too_many", MEDIUM, f"{len(company)} company objectives: above "
                    f"{MAX_COMPANY_OBJECTIVES} focus thins out. Two or three is the sweet spot.",
                    "Leadership")]


AGREED = ("approved", "published")  # the states in which a contribution counts


def coverage_gap(cycle):
    """A company objective with no approved or published objective aligned below it: a draft
    or a proposal is a plan to contribute, not yet a contribution."""
    if cycle.alignment_model == "thematic":
        return []
    agreed, pending = set(), Counter()
    for o in _live(cycle):
        if o.parent_id:
            if o.state in AGREED:
                agreed.add(o.parent_id)
            else:
                pending[o.parent_id] += 1
    findings = []
    for o in _live(cycle):
        if o.team_kind != "company" or o.id in agreed:
            continue
        message = f"No team contributes to “{o.title}”"
        if n := pending[o.id]:
            message += (f" yet: {n} draft or proposed objective{'s' if n > 1 else ''} "
                        f"{'are' if n > 1 else 'is'} not approved.")
        else:
            message += "."
        findings.append(Finding("coverage_gap", HIGH, message, "Alignment lead", o.id))
    return findings


def bottleneck(cycle):
    people = {}
    for o in _live(cycle):
        if o.owner_id is not None:
            people.setdefault((o.owner_id, o.owner), []).append(o)
    return [Finding("bottleneck", MEDIUM, f"{name} owns {len(objs)} objectives (the teams they "
                    f"lead); more than {BOTTLENECK_OBJECTIVES} makes them a bottleneck.", name)
            for (_, name), objs in sorted(people.items(), key=lambda p: p[0][1])
            if len(objs) > BOTTLENECK_OBJECTIVES]


def stale(cycle):
    if cycle.now is None:
        return []
    cutoff = cycle.now - timedelta(days=STALE_DAYS)
    published = {o.id: o for o in _live(cycle) if o.state == "published"}
    findings = []
    for k in cycle.key_results:
        o = published.get(k.objective_id)
        if o is None:
            continue
        last = k.last_check_in_at or k.created_at
        if last is not None and last < cutoff:
            days = (cycle.now - last).days
            findings.append(Finding(
                "stale", LOW, f"“{k.title}” has had no check-in for {days} days.", o.team,
                o.id, key_result_id=k.id))
    return findings


def unowned_dependency(cycle):
    if cycle.now is None:
        return []
    cutoff = cycle.now - timedelta(days=cycle.escalate_after_days)
    return [Finding("unowned_dependency", HIGH, f"{d.requesting_team} asked {d.providing_team} "
                    f"for “{d.need}” {(cycle.now - d.created_at).days} days ago; nobody has "
                    "answered.", d.providing_team, dependency_id=d.id)
            for d in cycle.dependencies if d.status == "requested" and d.created_at <= cutoff]


def commitment_mix(cycle):
    """A team (or department, or the company) with two or more live objectives in the cycle,
    all committed or all aspirational: all committed leaves no stretch, all aspirational
    leaves nothing the others can count on."""
    teams = {}
    for o in _live(cycle):
        teams.setdefault((o.team, o.team_id), []).append(o)
    findings = []
    for (name, _), objectives in sorted(teams.items()):
        kinds = {o.commitment for o in objectives}
        if len(objectives) < 2 or len(kinds) != 1:
            continue
        if kinds == {"aspirational"}:
            message = (f"{name}: all {len(objectives)} objectives are aspirational, so nothing "
                       "is promised to the teams who count on it. Mark what you will surely "
                       "deliver as committed.")
        else:
            message = (f"{name}: all {len(objectives)} objectives are committed, so none "
                       "stretches the team. Consider making one aspirational.")
        findings.append(Finding("commitment_mix", LOW, message, name))
    return findings


# A rule that reads ``cycle.now`` belongs in ``CLOCK`` (``alignment.report.TIMED``) too: a
# recompute that finds the cycle's data unchanged reruns only those (a test checks it).
RULES = (too_many_company_objectives, orphans, strict_local, too_local, copy_paste,
         kr_as_objective, sibling_overlap, metric_objective, task_key_result, over_cascading,
         coverage_gap, bottleneck, stale, unowned_dependency, commitment_mix)
CLOCK = (stale, unowned_dependency)
# The rules that read no title, no key result and no dependency: only the shape of the cycle
# (``_shape``). A title edit or a check-in leaves their findings as they were.
SHAPE = (too_many_company_objectives, too_local, over_cascading, bottleneck, commitment_mix)


def _shape(cycle):
    """Everything the ``SHAPE`` rules read: of each objective all but its title, and the
    alignment settings."""
    return (cycle.alignment_model, cycle.local_share_limit, tuple(map(_SHAPED, cycle.objectives)))


_SHAPED = attrgetter("id", "parent_id", "also_parents", "team_id", "team", "team_kind",
                     "is_local", "state", "owner_id", "owner", "theme", "commitment")


class _HashedOnce(tuple):
    """A unit's key that computes its hash once: the shape unit's key holds every objective,
    and a lookup hashes its key up to three times (kept by this run, by the last, kept
    again). Equal to the plain tuple, with the same hash."""

    def __hash__(self):
        found = self.__dict__.get("hash")
        if found is None:
            found = self.__dict__["hash"] = tuple.__hash__(self)
        return found


def run_all(cycle, *, clock=None):
    """Every rule's findings, in the report's order. clock: what the rules that read the clock
    (``CLOCK``) read, when not ``cycle`` (``alignment.report.timed_data``, narrowed in SQL);
    the others then read only ``cycle``. The ``SHAPE`` rules are one unit, keyed by
    ``_shape``."""
    _DERIVED.clear()
    _DERIVED["cycle"] = cycle
    try:
        if not UNITS.previous and not UNITS.stored:
            _cold(cycle)
        shaped = shape_unit(cycle)[1]
        findings = [f for rule in RULES
                    for f in (shaped[rule.__name__] if rule.__name__ in shaped and rule in SHAPE
                              else rule(clock if clock is not None and rule in CLOCK else cycle))]
    finally:
        _DERIVED.clear()
    UNITS.rotate()  # keep the units this run used, for the next
    _CACHE.clear()
    return in_order(findings)


def ran_elsewhere(previous, last):
    """What ``run_all`` leaves in this process when it ran in another one forked from it
    (``alignment.report``), which kept the units ``previous`` and computed and restored
    ``last`` (``UNITS.last``)."""
    UNITS.previous, UNITS.current = previous, {}
    UNITS.stored = {}
    UNITS.last = last
    UNITS.computed = UNITS.restored = 0
    _CACHE.clear()


def shape_unit(cycle):
    """The ``SHAPE`` rules' unit: its key (``_shape``), and their findings by rule name."""
    key = _HashedOnce(("shape", _shape(cycle)))
    return key, UNITS.get(key, lambda: {rule.__name__: rule(cycle) for rule in SHAPE})


def _cold(cycle):
    """A run with no unit kept nor stored (a new process, a deploy) computes every unit of the
    similarity rules: the titles they compare (the live objectives', and the key results' of
    the objectives with live children) are prepared in one pass, rather than a few per
    unit."""
    children = _derived(cycle, "children", _make_children)
    _prepared([*(o.title for o in _live(cycle)),
               *(k.title for k in cycle.key_results if k.objective_id in children)], _CACHE)


def run_shape(cycle):
    """The ``SHAPE`` rules' findings on the whole cycle (unordered), for a run that computes
    the others only where a change reached and knows the cycle's shape moved: no unit (its
    key costs a pass over the cycle and would not be found), and the unit of the shape before
    is dropped from those kept."""
    _DERIVED.clear()
    _DERIVED["cycle"] = cycle
    try:
        found = [f for rule in SHAPE for f in rule(cycle)]
    finally:
        _DERIVED.clear()
    for key in [key for key in UNITS.previous if key[0] == "shape"]:
        del UNITS.previous[key]
    return found


shaped = _SHAPED  # what the ``SHAPE`` rules read of an objective


# The rules whose every finding is about one objective (its ``objective_id``) and reads only
# what is near it: the objective, its live parent (title, key results), the parent's other
# live children, its own live children, its key results, and the alignment model. A change
# reaches the findings of the objectives it is near (``alignment.report`` finds them), and
# only those are computed again (``run_for``). A test checks that ``RULES`` is these, ``SHAPE``
# and ``CLOCK``.
PER_OBJECTIVE = (orphans, strict_local, copy_paste, kr_as_objective, sibling_overlap,
                 metric_objective, task_key_result, coverage_gap)


def run_for(cycle, ids):
    """The findings of the ``PER_OBJECTIVE`` rules about the objectives of ``ids``, unordered.
    ``cycle`` holds (in the order of ids) each of them that is live with its live parent,
    every live child of that parent and of itself, and the key results of it and of its
    parent: all that their findings read, so they are those the rules find on the whole cycle.
    The units used are kept with those of the runs before (``_Units.merge``)."""
    _DERIVED.clear()
    _DERIVED["cycle"] = cycle
    try:
        findings = [f for rule in PER_OBJECTIVE for f in rule(cycle) if f.objective_id in ids]
    finally:
        _DERIVED.clear()
    UNITS.merge()
    _CACHE.clear()
    return findings


_ORDER = attrgetter("rule", "message")


def in_order(findings):
    """The findings in the report's order: by severity, rule, message (sorted within each
    severity: a key function of C getters costs a third of a Python one's at 25,000)."""
    by = {severity: [] for severity in SEVERITY_ORDER}
    for f in findings:
        by[f.severity].append(f)
    return [f for severity in SEVERITY_ORDER for f in sorted(by[severity], key=_ORDER)]
