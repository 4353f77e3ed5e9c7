"""The objective page's sections that every reader sees alike, read once per change.

Its aligned objectives, breadcrumb and other parents, its key results' check-in history,
contributors and alignment, its shares, dependencies, contributions and recovery plan, its
alignment findings and review thread, its history across cycles: about twenty queries, most of
the page's time. They are cached under the organization's "objective" version
(``orgs/versions.py``: any write to the tables they read, and every health change, moves it)
and the day (health by pace, escalations in days). What depends on the reader (which buttons and
forms, who may answer or stop a contribution, which dependencies are escalated today) is worked
out on each request from the cached rows, and the objective and its key results themselves are
read fresh each time.

People's names (check-in authors, recovery owners, commenters) are not in the version: a renamed
person shows under the old name until the entry expires (``TTL``).
"""

from django.utils import timezone

from alignment import selectors as alignment_selectors
from dependencies import selectors as network_selectors
from orgs import versions

from . import scoring, selectors

# How long an entry may outlive a write whose version bump was lost (the cache failed then, or
# another process keeps its own in-process cache), or a person's new name.
TTL = 300

# What the sections attach to each of the objective's key results.
KR_PARTS = ("history", "sparkline", "contributing", "rollup_sentence", "aligned_objective",
            "feeds_kr", "fed_by", "contribution")


def _read(org, objective):
    """The sections, computed: plain rows, no reference to ``objective`` or its key results
    (they are read fresh on each request), so the same value serves every reader."""
    krs = list(objective.key_results.all())
    page = selectors.objective_sections(org, objective)
    network = network_selectors.objective_network(org, objective)
    network["contributions"] = [k.pk for k in network["contributions"]]
    for d in (*network["depends_on"], *network["needed_by"]):
        d._state.fields_cache.pop("organization", None)  # the reader's, set again on each read
    history = scoring.history(org, objective)
    return {
        **page,
        "network": network,
        "alignment_rows": alignment_selectors.objective_alignment_rows(org, objective),
        "cycle_history": [None if o.pk == objective.pk else o for o in history],
        "kr_parts": {k.pk: {a: getattr(k, a) for a in KR_PARTS if hasattr(k, a)} for k in krs},
    }


def objective_sections(org, objective):
    """The sections for ``objective`` (read by ``access_objective``), from the cache when
    nothing they show changed, attached to the objective's key results. The objective is
    assessed afresh; the rows are the same for every reader (``dependencies.selectors
    .for_reader`` adds the reader's part)."""
    key = f"objective:{org.pk}:{objective.pk}:{timezone.localdate().isoformat()}"
    data = versions.read_through(org.pk, "objective", key, lambda: _read(org, objective), TTL)
    selectors.assess([objective])
    krs = {k.pk: k for k in objective.key_results.all()}
    for pk, parts in data["kr_parts"].items():
        if pk in krs:
            krs[pk].__dict__.update(parts)
    network = dict(data["network"])
    network["contributions"] = [krs[pk] for pk in network["contributions"] if pk in krs]
    for d in (*network["depends_on"], *network["needed_by"]):
        d.organization = org
    return {
        **{k: v for k, v in data.items() if k not in ("kr_parts", "network", "cycle_history")},
        "network": network,
        "cycle_history": [objective if o is None else o for o in data["cycle_history"]],
    }
