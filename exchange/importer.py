"""Import a cycle's OKRs from a CSV file (the columns of the export, ``export.OKR_COLUMNS``).

Two steps, the same code: ``run(..., apply=False)`` is the dry run, ``apply=True`` the import.
Both read the whole file, check every row, then go through the services exactly as the import
would (okrs.services: create_objective, update_objective, create_key_result,
update_key_result, record_check_in) inside one transaction; the dry run always rolls it back,
and so does the import when any row has an error. So what the dry run lists is what the import
does, and a failing import writes nothing.

Rows match what exists by a stable key: an objective is its team and its title (in this cycle,
not retired; letter case and extra spaces do not count), a key result is its objective and its
title. A matched row updates only what differs; the same file imported twice changes nothing
the second time. New objectives are drafts, as when a lead adds one. A key result's "Current"
that differs from the stored value becomes a check-in whose source is "import".
"""

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from okrs import services
from okrs.models import CheckIn, Commitment, Health, KeyResult, Objective
from orgs.models import Membership, Team, Theme

from .cells import parse_decimal, unquote
from .export import OKR_COLUMNS, READ_ONLY_COLUMNS

MAX_BYTES = 1_000_000
MAX_ROWS = 5000
REQUIRED = ("Team", "Objective")

# A service's field, and the column that holds it.
OBJECTIVE_COLUMN = {"title": "Objective", "why": "Why it matters", "team": "Team",
                    "parent": "Parent objective", "is_local": "Local", "theme": "Theme",
                    "commitment": "Commitment", "state": "State", "cycle": "Team"}
KEY_RESULT_COLUMN = {"title": "Key result", "kind": "Kind", "start_value": "Start",
                     "target_value": "Target", "unit": "Unit", "weight": "Weight",
                     "owner_team": "Owner team", "owner": "Owner", "value": "Current",
                     "is_done": "Current", "confidence": "Confidence", "note": "Current",
                     "at": "Current"}


KEEP_PARENT = ("keep",)  # a file without the parent columns leaves parents as they are


class FileError(ValueError):
    """The file cannot be read at all (not CSV, too big, no header)."""


@dataclass
class Report:
    rows: int = 0
    errors: list = field(default_factory=list)  # (line, column, message)
    actions: list = field(default_factory=list)  # (line, what)
    notes: list = field(default_factory=list)  # sentences about the whole file
    applied: bool = False

    def error(self, line, column, message):
        self.errors.append((line, column, message))

    def count(self, prefix):
        return sum(1 for _, what in self.actions if what.startswith(prefix))


def _key(text):
    return " ".join(text.split()).casefold()


def read_rows(data):
    """``(header, rows)`` from the file's bytes: rows are (line, {column: text})."""
    if len(data) > MAX_BYTES:
        raise FileError(f"The file is larger than {MAX_BYTES // 1_000_000} MB; split it.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileError("The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it "
                        "again.") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise FileError("The file is empty. Download the template and fill it in.")
        names = {_key(c): c for c in OKR_COLUMNS}
        columns = [names.get(_key(h)) for h in header]
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise FileError(f"The first row must name the columns; “{'”, “'.join(missing)}” "
                            "is missing. Download the template to see them.")
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                raise FileError(f"The file has more than {MAX_ROWS} rows; split it.")
            row = {c: unquote(v) for c, v in zip(columns, values, strict=False)
                   if c and c not in READ_ONLY_COLUMNS}
            rows.append((reader.line_num, row))
    except csv.Error as e:
        raise FileError(f"The file is not valid CSV: {e}.") from None
    return [c for c in columns if c], rows


def _choice(value, choices):
    """A choice by its value or its label, any letter case; None when unknown."""
    wanted = _key(value)
    for code, label in choices:
        if wanted in (_key(code), _key(label)):
            return code
    return None


def _flag(value):
    wanted = _key(value)
    if wanted in ("", "no", "false", "0", "n"):
        return False
    if wanted in ("yes", "true", "1", "y", "x"):
        return True
    return None


class _Lookups:
    """The organization's teams, members and the cycle's objectives, loaded once."""

    def __init__(self, org, cycle):
        self.teams = {}
        for team in Team.objects.for_org(org):
            self.teams.setdefault(_key(team.name), []).append(team)
        self.people = {m.user.email.lower(): m.user for m in
                       Membership.objects.for_org(org).select_related("user")}
        self.themes = {}
        for theme in Theme.objects.for_org(org):
            self.themes.setdefault(_key(theme.name), []).append(theme)
        self.objectives = {}
        for o in (Objective.objects.for_org(org).filter(cycle=cycle).live()
                  .select_related("team", "theme", "cycle", "parent")):
            self.objectives.setdefault((o.team_id, _key(o.title)), []).append(o)
        self.key_results = {}
        for kr in (KeyResult.objects.for_org(org).filter(
                objective__organization=org, objective__cycle=cycle)
                .exclude(objective__state=Objective.State.RETIRED)
                .select_related("objective__cycle", "objective__team", "owner_team", "owner")):
            self.key_results.setdefault((kr.objective_id, _key(kr.title)), []).append(kr)

    def team(self, name):
        """``(team, error)``."""
        found = self.teams.get(_key(name), [])
        if not found:
            return None, f"No team is called “{name}”."
        if len(found) > 1:
            return None, f"Several teams are called “{name}”; rename one to import."
        return found[0], None


@dataclass
class _Objective:
    line: int
    team: Team
    title: str
    fields: dict  # why, commitment, is_local (only the columns the file has)
    parent_key: tuple | None  # (team id, title key)
    existing: Objective | None
    obj: Objective | None = None
    key_results: list = field(default_factory=list)


def _check(rows, columns, look, report):
    """Check every row; returns the objectives to write, in file order, with their key
    results."""
    has = set(columns)
    planned = {}
    kr_lines = {}
    for line, row in rows:
        def err(column, message, line=line):
            report.error(line, column, message)

        title = " ".join(row.get("Objective", "").split())
        if not title:
            err("Objective", "The objective's title is missing.")
        team, problem = look.team(row.get("Team", "")) if row.get("Team") else (
            None, "The team is missing.")
        if problem:
            err("Team", problem)
        fields = {}
        if "Why it matters" in has:
            fields["why"] = row.get("Why it matters", "")
        if "Commitment" in has and row.get("Commitment"):
            fields["commitment"] = _choice(row["Commitment"], Commitment.choices)
            if fields["commitment"] is None:
                err("Commitment", "Write committed or aspirational.")
        if "Local" in has:
            fields["is_local"] = _flag(row.get("Local", ""))
            if fields["is_local"] is None:
                err("Local", "Write yes or leave it empty.")
        if "Theme" in has:
            name = row.get("Theme", "")
            themes = look.themes.get(_key(name), []) if name else [None]
            if len(themes) != 1:
                err("Theme", f"No company theme is called “{name}”." if not themes else
                    f"Several company themes are called “{name}”; rename one to import.")
            fields["theme"] = themes[0] if themes else None
        parent_key = None if "Parent objective" in has else KEEP_PARENT
        parent_team_name, parent_title = row.get("Parent team", ""), row.get(
            "Parent objective", "")
        if parent_title and not parent_team_name:
            err("Parent team", "Name the parent objective's team too.")
        elif parent_team_name and not parent_title:
            err("Parent objective", "Name the parent objective too.")
        elif parent_title:
            parent_team, problem = look.team(parent_team_name)
            if problem:
                err("Parent team", problem)
            else:
                parent_key = (parent_team.pk, _key(parent_title))
        if team is None or not title:
            continue
        key = (team.pk, _key(title))
        existing = look.objectives.get(key, [])
        if len(existing) > 1:
            err("Objective", f"{team.name} has several objectives called “{title}” in this "
                "cycle; rename one to import.")
            continue
        o = planned.get(key)
        if o is None:
            o = planned[key] = _Objective(line, team, title, fields, parent_key,
                                          existing[0] if existing else None)
        else:
            for name, value in fields.items():
                if o.fields.get(name, value) != value:
                    err(OBJECTIVE_COLUMN[name], f"It differs from row {o.line} of the same "
                        "objective; write the objective's columns the same on each row.")
            if parent_key != o.parent_key:
                err("Parent objective", f"It differs from row {o.line} of the same objective.")
        kr_title = " ".join(row.get("Key result", "").split())
        if kr_title:
            kr_key = (key, _key(kr_title))
            if kr_key in kr_lines:
                err("Key result", f"Row {kr_lines[kr_key]} already has this key result.")
                continue
            kr_lines[kr_key] = line
            kr = _key_result_row(line, row, has, kr_title, team, look, err)
            if kr is not None:
                o.key_results.append(kr)
        elif not o.key_results and o.line != line:
            err("Key result", f"Row {o.line} already has this objective.")
    # Parents: in this cycle already, or in the file.
    for o in planned.values():
        named = o.parent_key not in (None, KEEP_PARENT)
        if named and o.parent_key not in planned and not look.objectives.get(o.parent_key):
            report.error(o.line, "Parent objective",
                         "No objective of that team has this title in this cycle or in the "
                         "file.")
    return list(planned.values()), planned


def _key_result_row(line, row, has, title, team, look, err):
    kind = KeyResult.Kind.NUMERIC
    if row.get("Kind"):
        kind = _choice(row["Kind"], KeyResult.Kind.choices)
        if kind is None:
            err("Kind", "Write numeric, keep_above, keep_below, milestone or baseline.")
            return None
    values = {}
    for column, name in (("Start", "start_value"), ("Target", "target_value"),
                         ("Weight", "weight")):
        value, problem = parse_decimal(row.get(column, ""))
        if problem:
            err(column, problem)
        values[name] = value
    if values["weight"] is None:
        values["weight"] = 1
    current = row.get("Current", "")
    done = None
    if kind == KeyResult.Kind.MILESTONE:
        done = {"done": True, "yes": True, "not done": False, "no": False, "": None}.get(
            _key(current), "?")
        if done == "?":
            err("Current", "A milestone is “done” or empty.")
        current = None
    else:
        current, problem = parse_decimal(current)
        if problem:
            err("Current", problem)
    confidence = None
    if row.get("Confidence"):
        confidence = _choice(row["Confidence"], Health.choices)
        if confidence is None:
            err("Confidence", "Write on_track, at_risk or off_track.")
    owner_team = team
    if row.get("Owner team"):
        owner_team, problem = look.team(row["Owner team"])
        if problem:
            err("Owner team", problem)
            return None
    owner = None
    if row.get("Owner"):
        owner = look.people.get(row["Owner"].lower())
        if owner is None:
            err("Owner", f"No member of the organization has the address “{row['Owner']}”.")
            return None
    return {"line": line, "title": title, "kind": kind, "owner_team": owner_team,
            "owner": owner, "unit": row.get("Unit", "") if "Unit" in has else None,
            "current": current, "done": done, "confidence": confidence, **values}


def _order(objectives, planned):
    """Parents before the objectives that contribute to them; a loop in the file is refused."""
    done, order, loops = set(), [], []

    def visit(o, path):
        key = (o.team.pk, _key(o.title))
        if key in done:
            return
        if key in path:
            loops.append(o)
            return
        parent = planned.get(o.parent_key)
        if parent is not None:
            visit(parent, path | {key})
        if key not in done:
            done.add(key)
            order.append(o)

    for o in objectives:
        visit(o, frozenset())
    return order, loops


class _Rollback(Exception):
    pass


def run(*, membership, cycle, data, apply):
    """Check and (with ``apply``) import the file's rows; returns a ``Report``. Raises
    ``FileError`` when the file cannot be read. Nothing is written unless ``apply`` and every
    row passed."""
    report = Report()
    columns, rows = read_rows(data)
    report.rows = len(rows)
    if cycle.is_closed:
        report.error(0, "", "This cycle is closed; its OKRs can no longer change.")
        return report
    look = _Lookups(membership.organization, cycle)
    objectives, planned = _check(rows, columns, look, report)
    order, loops = _order(objectives, planned)
    for o in loops:
        report.error(o.line, "Parent objective", "Its parents in the file lead back to it.")
    if report.errors:
        return report
    try:
        with transaction.atomic():
            _write(membership, cycle, order, planned, look, report)
            if report.errors or not apply:
                raise _Rollback
            report.applied = True
    except _Rollback:
        pass
    return report


def _service_errors(report, line, error, columns):
    if isinstance(error, PermissionDenied):
        report.error(line, "", str(error))
        return
    if hasattr(error, "error_dict"):
        for name, messages in error.message_dict.items():
            for message in messages:
                report.error(line, columns.get(name, ""), message)
    else:
        for message in error.messages:
            report.error(line, "", message)


def _write(membership, cycle, order, planned, look, report):
    for o in order:
        parent = None
        if o.parent_key is KEEP_PARENT:
            parent = o.existing.parent if o.existing else None
        elif o.parent_key:
            if o.parent_key in planned:
                parent = planned[o.parent_key].obj
                if parent is None:
                    report.error(o.line, "Parent objective", "Its parent could not be "
                                 f"imported (row {planned[o.parent_key].line}).")
                    continue
            else:
                parent = look.objectives[o.parent_key][0]
        try:
            with transaction.atomic():
                if o.existing is None:
                    o.obj = services.create_objective(
                        membership=membership, cycle=cycle, team=o.team, title=o.title,
                        why=o.fields.get("why", ""), parent=parent,
                        is_local=bool(o.fields.get("is_local")),
                        theme=o.fields.get("theme"), commitment=o.fields.get("commitment"))
                    report.actions.append((o.line, f"Create the objective “{o.title}”"))
                else:
                    o.obj = _update_objective(membership, o, parent, report)
        except (ValidationError, PermissionDenied) as e:
            _service_errors(report, o.line, e, OBJECTIVE_COLUMN)
            continue
        for kr in o.key_results:
            try:
                with transaction.atomic():
                    _write_key_result(membership, o.obj, kr, look, report)
            except (ValidationError, PermissionDenied) as e:
                _service_errors(report, kr["line"], e, KEY_RESULT_COLUMN)


def _update_objective(membership, o, parent, report):
    current = o.existing
    why = o.fields.get("why", current.why)
    commitment = o.fields.get("commitment", current.commitment)
    is_local = o.fields.get("is_local", current.is_local)
    theme = o.fields.get("theme", current.theme)
    changed = [label for label, old, new in (
        ("theme", current.theme_id, theme.pk if theme else None),
        ("why it matters", current.why.strip(), why.strip()),
        ("commitment", current.commitment, commitment),
        ("local", current.is_local, is_local),
        ("parent", current.parent_id, parent.pk if parent else None)) if old != new]
    if not changed:
        return current
    updated = services.update_objective(
        membership=membership, objective=current, version=current.version, title=current.title,
        why=why, team=current.team, parent=parent, is_local=is_local, state=current.state,
        theme=theme, commitment=commitment)
    report.actions.append((o.line, f"Update the objective “{current.title}”: "
                                   f"{', '.join(changed)}"))
    return updated


def _write_key_result(membership, objective, kr, look, report):
    existing = look.key_results.get((objective.pk, _key(kr["title"])), [])
    if len(existing) > 1:
        raise ValidationError({"title": f"“{objective.title}” has several key results called "
                                        f"“{kr['title']}”; rename one to import."})
    unit = kr["unit"]
    if existing:
        current = existing[0]
        if current.kind != kr["kind"]:
            raise ValidationError({"kind": f"It is a {current.get_kind_display().lower()} key "
                                           "result; its kind cannot change."})
        unit = current.unit if unit is None else unit
        changed = [label for label, old, new in (
            ("start", current.start_value, kr["start_value"]),
            ("target", current.target_value, kr["target_value"]),
            ("unit", current.unit, unit), ("weight", current.weight, kr["weight"]),
            ("owner team", current.owner_team_id, kr["owner_team"].pk),
            ("owner", current.owner_id, kr["owner"].pk if kr["owner"] else None))
            if _differs(old, new, current.kind, label)]
        key_result = current
        if changed:
            key_result = services.update_key_result(
                membership=membership, key_result=current, version=current.version,
                title=current.title, start_value=kr["start_value"],
                target_value=kr["target_value"], unit=unit, owner_team=kr["owner_team"],
                owner=kr["owner"], weight=kr["weight"])
            report.actions.append((kr["line"], f"Update the key result “{current.title}”: "
                                               f"{', '.join(changed)}"))
    else:
        key_result = services.create_key_result(
            membership=membership, objective=objective, title=kr["title"], kind=kr["kind"],
            start_value=kr["start_value"], target_value=kr["target_value"], unit=unit or "",
            owner_team=kr["owner_team"], owner=kr["owner"], weight=kr["weight"])
        report.actions.append((kr["line"], f"Create the key result “{kr['title']}”"))
    _check_in(membership, key_result, kr, report)


def _differs(old, new, kind, label):
    # Only "numeric" keeps a start, and milestones and baselines keep no target: the file's
    # value for those is not stored, so it is no change.
    if label == "start" and kind != KeyResult.Kind.NUMERIC:
        return False
    if label == "target" and kind in (KeyResult.Kind.MILESTONE, KeyResult.Kind.BASELINE):
        return False
    return old != new


def _check_in(membership, key_result, kr, report):
    """A "Current" that differs from the stored value: a check-in from the import."""
    if key_result.is_milestone:
        if kr["done"] is None or kr["done"] == key_result.is_done:
            return
        value, is_done = None, kr["done"]
    else:
        if kr["current"] is None or kr["current"] == key_result.current_value or (
                key_result.rollup):
            return
        value, is_done = kr["current"], None
    cycle = key_result.objective.cycle
    if timezone.localdate() < cycle.start_date:
        # A check-in is dated inside its cycle: a cycle being planned takes the OKRs, and
        # their values wait for the first check-ins.
        note = (f"{cycle.name} has not started: the “Current” values are not imported; "
                "the key results start from their start values.")
        if note not in report.notes:
            report.notes.append(note)
        return
    services.record_check_in(
        membership=membership, key_result=key_result, value=value, is_done=is_done,
        confidence=kr["confidence"] or key_result.confidence or Health.ON_TRACK,
        note="Imported from a file.", source=CheckIn.Source.IMPORT)
    shown = ("done" if is_done else "not done") if value is None else f"{value.normalize():f}"
    report.actions.append((kr["line"], f"Check in on “{key_result.title}”: {shown}"))
