"""Suggestions while drafting an objective: likely parents and likely dependencies, from the
organization's own text (titles, why, key results) by TF-IDF and cosine similarity
(``tfidf``). The index of a cycle is built once and cached, keyed by a version that moves when
an objective or key result of the cycle is added, removed or edited (their ``version`` sums).
That version is itself cached under the organization's "suggest" topic (``orgs/versions.py``):
its three aggregates over every objective and key result of the cycle run again only after a
write to those tables, not on each keystroke."""

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Max, Sum

from okrs.models import KeyResult, Objective
from orgs import versions
from orgs.models import Team

from . import tfidf

CACHE_SECONDS = 24 * 3600
# How long a cached version may outlive a write that moved no topic (raw SQL, a lost bump).
VERSION_TTL = 60
FORMAT = 2  # of the cached Corpus: raise it when the class changes
_LOCAL = {}  # the last few indexes this process built or read: no unpickling per keystroke
_LOCAL_SIZE = 8
ANCESTOR_BOOST = 1.3  # a parent is most often an objective of a team above the drafting one
# ... so those objectives are candidates even with no word in common, the team just above first
# (its objectives are what a team usually contributes to); ``structure=False`` leaves it out.
TEAM_ABOVE_PRIOR = (0.12, 0.06, 0.03)


@dataclass(frozen=True)
class Suggestion:
    kind: str  # "objective" or "key_result"
    id: int
    title: str
    team: str
    team_id: int
    score: float
    words: tuple  # the shared words: why it was suggested
    above: str = ""  # or: the team above whose objective it is

    @property
    def label(self):
        """As the parent picker shows an objective."""
        return f"{self.team}: {self.title}"

    @property
    def why(self):
        shares = "Shares " + ", ".join(f"“{w}”" for w in self.words) if self.words else ""
        above = f"{self.above} is the team above yours" if self.above else ""
        return "; ".join(x for x in (shares, above) if x)


class Corpus:
    """One cycle's objectives and key results, indexed, with what a suggestion shows."""

    def __init__(self, objectives, key_results, teams):
        self.teams = {t["id"]: (t["name"], t["parent_id"]) for t in teams}
        self.objectives = {o["id"]: (o["title"], o["team_id"], o["parent_id"])
                           for o in objectives}
        self.key_results = {k["id"]: (k["title"], k["owner_team_id"], k["objective_id"])
                            for k in key_results}
        self.by_team = {}
        for o in objectives:
            self.by_team.setdefault(o["team_id"], []).append(o["id"])
        kr_text = {}
        for k in key_results:
            kr_text.setdefault(k["objective_id"], []).append(k["title"])
        self.objective_index = tfidf.Index({
            o["id"]: tfidf.tokens(o["title"]) * 2 + tfidf.tokens(o["why"])
            + tfidf.tokens(" ".join(kr_text.get(o["id"], ())))
            for o in objectives})
        self.key_result_index = tfidf.Index({
            k["id"]: tfidf.tokens(k["title"]) * 2 + tfidf.tokens(
                self.objectives.get(k["objective_id"], ("",))[0])
            for k in key_results})

    def ancestors(self, team_id):
        seen, out = set(), []
        team = self.teams.get(team_id)
        while team is not None and team[1] is not None and team[1] not in seen:
            seen.add(team[1])
            out.append(team[1])
            team = self.teams.get(team[1])
        return out

    def below(self, objective_id):
        """The objective and everything aligned under it (it cannot become their child)."""
        children = {}
        for pk, (_, _, parent) in self.objectives.items():
            children.setdefault(parent, []).append(pk)
        out, todo = set(), [objective_id]
        while todo:
            pk = todo.pop()
            if pk not in out:
                out.add(pk)
                todo.extend(children.get(pk, ()))
        return out

    def parents(self, toks, *, team_id=None, exclude=(), limit=3, structure=True):
        above = self.ancestors(team_id) if team_id else []
        depth = {t: i for i, t in enumerate(above)}
        excluded = set(exclude)
        candidates = [pk for t in above[:len(TEAM_ABOVE_PRIOR)] for pk in self.by_team.get(t, ())
                      ] if structure else ()

        def allowed(pk):
            return pk not in excluded and self.objectives[pk][1] != team_id

        def boost(pk):
            return ANCESTOR_BOOST if self.objectives[pk][1] in depth else 1.0

        def prior(pk):
            d = depth.get(self.objectives[pk][1])
            return TEAM_ABOVE_PRIOR[d] if d is not None and d < len(TEAM_ABOVE_PRIOR) else 0.0

        found = self.objective_index.rank(toks, allowed=allowed, boost=boost,
                                          prior=prior if structure else None,
                                          candidates=candidates, limit=limit)
        return [self._objective(pk, score, words, team_id if not words else None)
                for pk, score, words in found]

    def dependencies(self, toks, *, team_id=None, limit=3):
        above = set(self.ancestors(team_id)) if team_id else set()

        def allowed(pk):  # another team's work, not the line above (that is alignment)
            owner = self.key_results[pk][1]
            return owner != team_id and owner not in above

        return [self._key_result(pk, score, words) for pk, score, words in
                self.key_result_index.rank(toks, allowed=allowed, limit=limit)]

    def _objective(self, pk, score, words, drafting_team_id=None):
        title, team_id, _ = self.objectives[pk]
        name = self.teams.get(team_id, ("?",))[0]
        return Suggestion("objective", pk, title, name, team_id, score, tuple(words),
                          above=name if drafting_team_id is not None else "")

    def _key_result(self, pk, score, words):
        title, team_id, _ = self.key_results[pk]
        return Suggestion("key_result", pk, title, self.teams.get(team_id, ("?",))[0], team_id,
                          score, tuple(words))


def _live_objectives(org, cycle):
    return Objective.objects.for_org(org).filter(cycle=cycle).exclude(
        state=Objective.State.RETIRED)


def _live_key_results(org, cycle):
    return KeyResult.objects.for_org(org).filter(objective__cycle=cycle).exclude(
        objective__state=Objective.State.RETIRED)


def current_version(org, cycle):
    """Moves when an objective or key result of the cycle is added, removed, retired or
    edited (each edit raises its ``version``); and when a team is added or renamed."""
    o = _live_objectives(org, cycle).aggregate(n=Count("id"), v=Sum("version"), m=Max("id"))
    k = _live_key_results(org, cycle).aggregate(n=Count("id"), v=Sum("version"), m=Max("id"))
    t = Team.objects.for_org(org).aggregate(n=Count("id"), m=Max("id"))
    return "-".join(str(x or 0) for x in (o["n"], o["v"], o["m"], k["n"], k["v"], k["m"],
                                           t["n"], t["m"]))


def version(org, cycle):
    """``current_version``, read again only after a write to the tables it sums."""
    return versions.read_through(org.pk, "suggest", f"suggest-version:{cycle.pk}",
                                 lambda: current_version(org, cycle), VERSION_TTL)


def corpus(org, cycle):
    """The cycle's index: built once per version, kept in the process and in the cache. A
    request asking for parents and dependencies reads it once and passes it to both."""
    key = f"suggest:{FORMAT}:{org.pk}:{cycle.pk}:{version(org, cycle)}"
    found = _LOCAL.get(key)
    if found is None:
        found = cache.get(key)
    if found is None:
        found = Corpus(
            list(_live_objectives(org, cycle).values("id", "title", "why", "team_id",
                                                     "parent_id")),
            list(_live_key_results(org, cycle).values("id", "title", "owner_team_id",
                                                      "objective_id")),
            list(Team.objects.for_org(org).values("id", "name", "parent_id")))
        cache.set(key, found, CACHE_SECONDS)
    if key not in _LOCAL:
        if len(_LOCAL) >= _LOCAL_SIZE:
            _LOCAL.pop(next(iter(_LOCAL)))
        _LOCAL[key] = found
    return found


def query_tokens(title="", why="", key_results=""):
    """The drafting text: the title counts twice, as it does in the index."""
    return tfidf.tokens(title) * 2 + tfidf.tokens(why) + tfidf.tokens(key_results)


def suggest_parents(org, cycle, text, team=None, limit=3, *, objective=None, index=None):
    """Likely parents for an objective about ``text`` drafted by ``team`` in ``cycle``: the
    objectives of other teams closest in words, those of the teams above first. Each
    ``Suggestion`` says why (the shared words). ``objective``: the one being edited (neither
    it nor anything under it is offered). Also the seam of a KPI's recovery objective.
    ``index``: the cycle's ``corpus`` when the caller already read it."""
    c = index or corpus(org, cycle)
    exclude = c.below(objective.pk) if objective is not None and objective.pk else ()
    toks = text if isinstance(text, list) else query_tokens(text)
    return c.parents(toks, team_id=team.pk if team else None, exclude=exclude, limit=limit)


def suggest_dependencies(org, cycle, text, team=None, limit=3, *, index=None):
    """Key results of other teams (not those above: that is alignment) the drafted objective
    may need, closest in words first."""
    c = index or corpus(org, cycle)
    toks = text if isinstance(text, list) else query_tokens(text)
    return c.dependencies(toks, team_id=team.pk if team else None, limit=limit)
