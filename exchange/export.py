"""A cycle's OKRs, check-ins and alignment matrix as rows, for CSV and XLSX downloads.

Rows are generated while they are written: the OKRs come from two queries read in chunks (the
objectives and the key results, both in tree order, merged here), so memory and the number of
queries stay the same however large the organization is. The CSV streams; the XLSX is written
row by row into a temporary file (``exchange.xlsx``).
"""

import csv
from collections import defaultdict

from django.db.models import Count
from django.utils import timezone

from okrs import progress
from okrs.models import CheckIn, KeyResult, Objective
from orgs.models import Organization, Team, Theme

from .cells import number, safe

CHUNK = 2000

# The OKR file: the export writes these columns and the import reads them (the template is
# this header row). The last four are read-only: the import ignores them.
OKR_COLUMNS = [
    "Team", "Objective", "Why it matters", "Commitment", "Parent team", "Parent objective",
    "Local", "Theme", "Key result", "Kind", "Owner team", "Owner", "Start", "Target",
    "Current", "Unit", "Weight", "Confidence", "State", "Progress", "Health", "Score",
]
READ_ONLY_COLUMNS = ("State", "Progress", "Health", "Score")

CHECK_IN_COLUMNS = [
    "Team", "Objective", "Key result", "Time", "Value", "Done", "Confidence", "Note",
    "Author or source", "Corrected",
]


class _Echo:
    """A file-like object whose write returns the line: csv.writer then yields text."""

    def write(self, value):
        return value


def csv_lines(header, rows):
    """The CSV text, one line at a time, every cell made safe for a spreadsheet."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(header)  # the BOM: spreadsheets then read UTF-8
    for row in rows:
        yield writer.writerow([safe(c) for c in row])


def xlsx_file(out, title, header, rows):
    """Write an XLSX workbook of one sheet to the binary file ``out``, row by row."""
    from . import xlsx

    def all_rows():
        yield header
        for row in rows:
            yield [safe(c) for c in row]

    xlsx.write(out, title, all_rows())


def _health_label(assessment):
    if assessment is None:
        return ""
    if assessment.is_stale:
        return "stale"
    return assessment.health or ""


def _assess(kr, elapsed, now):
    try:
        return progress.assess_key_result(
            kind=kr["kind"], start=kr["start_value"], target=kr["target_value"],
            current=kr["current_value"], is_done=kr["is_done"],
            confidence=kr["confidence"] or None, last_check_in=kr["last_check_in_at"],
            elapsed=elapsed, now=now)
    except (ValueError, TypeError, ArithmeticError):
        return None


def current_cell(kr):
    """A milestone's current value is "done" or nothing; others, their number."""
    if kr["kind"] == KeyResult.Kind.MILESTONE:
        return "done" if kr["is_done"] else ""
    return number(kr["current_value"])


OBJECTIVE_FIELDS = ("id", "title", "why", "commitment", "is_local", "state", "score",
                    "team__name", "parent__title", "parent__team__name", "theme__name")
KEY_RESULT_FIELDS = ("objective_id", "title", "kind", "start_value", "target_value",
                     "current_value", "is_done", "unit", "weight", "confidence",
                     "last_check_in_at", "score", "owner_team__name", "owner__email")


def okr_rows(org, cycle, *, now=None):
    """One row per key result, and one per objective that has none, in tree order."""
    now = now or timezone.now()
    elapsed = progress.elapsed_share(cycle.start_date, cycle.end_date, timezone.localdate(now))
    objectives = (Objective.objects.for_org(org).filter(cycle=cycle).live()
                  .order_by("tree_id", "lft", "pk").values(*OBJECTIVE_FIELDS)
                  .iterator(chunk_size=CHUNK))
    key_results = (KeyResult.objects.for_org(org)
                   .filter(objective__organization=org, objective__cycle=cycle)
                   .exclude(objective__state=Objective.State.RETIRED)
                   .order_by("objective__tree_id", "objective__lft", "objective_id",
                             "position", "pk")
                   .values(*KEY_RESULT_FIELDS).iterator(chunk_size=CHUNK))
    pending = next(key_results, None)
    for o in objectives:
        head = [o["team__name"], o["title"], o["why"], o["commitment"],
                o["parent__team__name"] or "", o["parent__title"] or "", o["is_local"],
                o["theme__name"] or ""]
        wrote = False
        while pending is not None and pending["objective_id"] == o["id"]:
            kr = pending
            a = _assess(kr, elapsed, now)
            yield [*head, kr["title"], kr["kind"], kr["owner_team__name"],
                   kr["owner__email"] or "", number(kr["start_value"]),
                   number(kr["target_value"]), current_cell(kr), kr["unit"],
                   number(kr["weight"]), kr["confidence"], o["state"],
                   "" if a is None or a.percent is None else a.percent, _health_label(a),
                   "" if kr["score"] is None else round(kr["score"], 2)]
            wrote = True
            pending = next(key_results, None)
        if not wrote:
            yield [*head, "", "", "", "", "", "", "", "", "", "", o["state"], "", "",
                   "" if o["score"] is None else round(o["score"], 2)]


def check_in_rows(org, cycle):
    """Every check-in of the cycle's key results, newest first; corrected ones say so."""
    rows = (CheckIn.objects.for_org(org)
            .filter(key_result__objective__organization=org, key_result__objective__cycle=cycle)
            .order_by("-created_at", "-pk")
            .values_list("key_result__objective__team__name", "key_result__objective__title",
                         "key_result__title", "created_at", "value", "is_done", "confidence",
                         "note", "author__full_name", "author__email", "source", "correction")
            .iterator(chunk_size=CHUNK))
    sources = dict(CheckIn.Source.choices)
    for (team, objective, kr, at, value, is_done, confidence, note, full_name, email, source,
         correction) in rows:
        if email:
            who = full_name or email.split("@")[0]
        else:
            who = sources.get(source, source)
        yield [team, objective, kr, timezone.localtime(at).isoformat(timespec="minutes"),
               number(value), "" if is_done is None else ("done" if is_done else "not done"),
               confidence, note, who, correction]


WORST = {"off_track": 3, "at_risk": 2, "on_track": 1}


def matrix_rows(org, cycle):
    """The alignment matrix: a header row (the company objectives, or the themes) then one row
    per team; each cell counts the team's live objectives under that column, with their worst
    effective health ("2 (at risk)"). Grouped in the database: the rows are teams x columns."""
    thematic = org.alignment_model == Organization.AlignmentModel.THEMATIC
    live = Objective.objects.for_org(org).filter(cycle=cycle).live()
    if thematic:
        columns = list(Theme.objects.for_org(org).order_by("name", "pk").values_list(
            "pk", "name"))
        key = "theme_id"
    else:
        columns = list(live.filter(level=0, team__kind=Team.Kind.COMPANY)
                       .order_by("title", "pk").values_list("tree_id", "title"))
        key = "tree_id"
    cells = defaultdict(lambda: [0, ""])
    grouped = (live.exclude(team__kind=Team.Kind.COMPANY).exclude(**{f"{key}__isnull": True})
               .order_by().values_list("team_id", key, "effective_health")
               .annotate(n=Count("id")))
    for team_id, col, health, n in grouped:
        cell = cells[(team_id, col)]
        cell[0] += n
        if WORST.get(health, 0) > WORST.get(cell[1], 0):
            cell[1] = health
    labels = dict(Objective._meta.get_field("effective_health").choices)
    yield ["Team", "Team kind", *[title for _, title in columns]]
    teams = (Team.objects.for_org(org).exclude(kind=Team.Kind.COMPANY)
             .order_by("tree_id", "lft").values_list("pk", "name", "kind")
             .iterator(chunk_size=CHUNK))
    for team_id, name, kind in teams:
        row = [name, kind]
        for col, _ in columns:
            n, worst = cells.get((team_id, col), (0, ""))
            row.append(f"{n} ({labels[worst].lower()})" if n and worst else (n or ""))
        yield row
