"""A key result's data sources: the inbound webhook, the scheduled pull, the CSV of values.

Every value becomes a check-in through ``okrs.services.record_source_check_in`` (source "data
source"), so propagation runs as for a person's check-in. A source remembers its last error
and how many times in a row it failed; from the third, its key result's owner finds it in the
inbox until it works again.
"""

import csv
import io
import json
import logging
import secrets
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from okrs.models import CheckIn
from okrs.services import record_source_check_in
from orgs import permissions
from orgs.models import Cycle
from orgs.services import lock_organization

from . import http, signing
from .models import MAX_INTERVAL, MIN_INTERVAL, DataSource, IntegrationSettings

log = logging.getLogger(__name__)
Kind = DataSource.Kind
MAX_WEBHOOK_BYTES = 16_384
MAX_CSV_BYTES = 1_000_000
MAX_CSV_ROWS = 1000
ERROR_MAX = 300
DONE_WORDS = {"done": True, "yes": True, "true": True, "1": True,
              "not done": False, "no": False, "false": False, "0": False}


# Settings -------------------------------------------------------------------------------------


def settings_for(org):
    with scopes_disabled():
        row, _ = IntegrationSettings.objects.get_or_create(organization=org)
    return row


def allows_private(org):
    with scopes_disabled():
        return IntegrationSettings.objects.filter(
            organization=org, allow_private_addresses=True).exists()


def set_allow_private(*, membership, allow):
    if not permissions.can_manage_members(membership):
        raise PermissionDenied("Only org admins change this.")
    row = settings_for(membership.organization)
    row.allow_private_addresses = bool(allow)
    row.save(update_fields=["allow_private_addresses"])
    return row


def fetch_options(org):
    return {"allow_private": allows_private(org)}


# The path into a JSON document --------------------------------------------------------------


def parse_path(path):
    """``data.total`` -> ["data", "total"]; ``issues.0.count`` -> ["issues", 0, "count"]. An
    empty path is the document itself. Raises ValueError on a malformed path."""
    path = (path or "").strip()
    if not path:
        return []
    steps = []
    for part in path.split("."):
        if not part:
            raise ValueError("The path has an empty step (two dots in a row, or a dot at an "
                             "end).")
        steps.append(int(part) if part.isdigit() else part)
    return steps


def resolve_path(document, path):
    """The value at ``path`` in ``document``; ValueError naming the step that is missing."""
    value, walked = document, []
    for step in parse_path(path):
        if isinstance(step, int) and isinstance(value, list):
            if step >= len(value):
                raise ValueError(f"{'.'.join(walked) or 'The document'} has no item {step} "
                                 f"(it has {len(value)}).")
            value = value[step]
        elif isinstance(value, dict) and str(step) in value:
            value = value[str(step)]
        else:
            where = ".".join(walked) or "the document"
            raise ValueError(f"No “{step}” in {where}.")
        walked.append(str(step))
    return value


def as_number(value):
    if isinstance(value, bool) or value is None:
        raise ValueError("The value there is not a number.")
    if isinstance(value, (int, float, str)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"“{str(value)[:40]}” is not a number.") from None
        if not number.is_finite():
            raise ValueError("The value there is not a finite number.")
        return number
    raise ValueError("The value there is a list or an object, not a number; extend the path.")


def as_done(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, str)) and str(value).strip().lower() in DONE_WORDS:
        return DONE_WORDS[str(value).strip().lower()]
    raise ValueError("Say whether the milestone is done: true or false.")


# Setting a source up ---------------------------------------------------------------------------


def can_manage(membership, key_result):
    """The lead of the key result's owner team (or a department above it), an alignment lead
    or an admin."""
    return permissions.can_edit_team_okrs(membership, key_result.owner_team_id)


def _check_manage(membership, key_result):
    if not can_manage(membership, key_result):
        raise PermissionDenied("Only the owner team's lead or an admin sets up data sources.")
    if key_result.objective.cycle.is_closed:
        raise ValidationError("This cycle is closed; its key results take no more values.")
    if key_result.objective.is_retired:
        raise ValidationError("This objective is retired; its key results take no more values.")


def save_source(*, membership, key_result, kind, url="", json_path="", interval_minutes=60,
                is_active=True, now=None):
    """Create or change the key result's data source. Returns (source, secret): the secret is
    given only when the source is new (show it once)."""
    _check_manage(membership, key_result)
    org = membership.organization
    errors = {}
    if kind not in Kind.values:
        errors["kind"] = "Choose an inbound webhook or a scheduled pull."
    url, json_path = (url or "").strip(), (json_path or "").strip()
    if kind == Kind.PULL:
        try:
            http.check_url(url, **fetch_options(org))
        except http.FetchError as exc:
            errors["url"] = str(exc)
        try:
            parse_path(json_path)
        except ValueError as exc:
            errors["json_path"] = str(exc)
        if not isinstance(interval_minutes, int) or not (
                MIN_INTERVAL <= interval_minutes <= MAX_INTERVAL):
            errors["interval_minutes"] = (f"Pull every {MIN_INTERVAL} minutes at the most "
                                          "often, once a week at the least.")
    if errors:
        raise ValidationError(errors)
    now = now or timezone.now()
    with transaction.atomic():
        lock_organization(org)
        source = DataSource.objects.for_org(org).filter(key_result=key_result).first()
        secret = None
        if source is None:
            secret = signing.new_secret()
            source = DataSource(organization=org, key_result=key_result, created_by=membership.user,
                                token=secrets.token_urlsafe(24), secret=secret)
        source.kind, source.is_active = kind, bool(is_active)
        if kind == Kind.PULL:
            changed = (source.url, source.json_path, source.interval_minutes) != (
                url, json_path, interval_minutes)
            source.url, source.json_path, source.interval_minutes = url, json_path, interval_minutes
            if changed or source.next_pull_at is None:
                source.next_pull_at = now  # the sweep pulls it at once
        else:
            source.next_pull_at = None
        source.full_clean(exclude=["url", "key_result", "organization", "token", "secret"])
        source.save()
    return source, secret


def regenerate_secret(*, membership, source):
    _check_manage(membership, source.key_result)
    secret = signing.new_secret()
    DataSource.objects.for_org(membership.organization).filter(pk=source.pk).update(secret=secret)
    source.secret = secret
    return secret


def remove_source(*, membership, source):
    if not can_manage(membership, source.key_result):
        raise PermissionDenied("Only the owner team's lead or an admin removes data sources.")
    DataSource.objects.for_org(membership.organization).filter(pk=source.pk).delete()


# Success and failure ---------------------------------------------------------------------------


def record_success(source, *, now=None):
    now = now or timezone.now()
    with scopes_disabled():
        DataSource.objects.filter(pk=source.pk).update(last_success_at=now, failures=0)
    source.last_success_at, source.failures = now, 0


def record_failure(source, error, *, now=None):
    """Remember the error and count it; the third in a row puts the source in the owner's
    inbox (nudges.inbox, kind "source")."""
    from django.db.models import F

    now = now or timezone.now()
    error = str(error)[:ERROR_MAX]
    with scopes_disabled():
        DataSource.objects.filter(pk=source.pk).update(
            last_error=error, last_error_at=now, failures=F("failures") + 1)
        source.refresh_from_db(fields=["failures"])
    source.last_error, source.last_error_at = error, now
    log.warning("Data source %s (key result %s, organization %s) failed %s times in a row: %s",
                source.pk, source.key_result_id, source.organization_id, source.failures, error)


def _message(exc):
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def _check_in(source, *, value=None, is_done=None, note="", at=None):
    key_result = source.key_result
    if key_result.is_milestone:
        return record_source_check_in(key_result=key_result, source=CheckIn.Source.DATA_SOURCE,
                                      is_done=is_done, note=note, at=at)
    return record_source_check_in(key_result=key_result, source=CheckIn.Source.DATA_SOURCE,
                                  value=value, note=note, at=at)


# (a) The inbound webhook -----------------------------------------------------------------------


class Refused(Exception):
    """An inbound request refused: ``status`` is the HTTP status to answer."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def source_by_token(token):
    with scopes_disabled():
        return (DataSource.objects.select_related("organization").filter(
            token=token, kind=Kind.WEBHOOK).first() if token else None)


def receive(token, *, body, timestamp, signature, now=None):
    """An inbound webhook request: verify, parse, check in. Returns the check-in; raises
    Refused. A refused signature leaves the source as it was (a stranger cannot make it
    fail); a signed request with a bad value counts as a failure of the source."""
    source = source_by_token(token)
    if source is None or not source.is_active:
        raise Refused(404, "No data source has this address.")
    if len(body) > MAX_WEBHOOK_BYTES:
        raise Refused(413, f"The body is larger than {MAX_WEBHOOK_BYTES:,} bytes.")
    try:
        signing.verify(source.secret, timestamp=timestamp, body=body, signature=signature,
                       now=None if now is None else now.timestamp())
    except signing.BadSignature as exc:
        raise Refused(401, str(exc)) from None
    org = source.organization
    with scope(organization=org):
        source = (DataSource.objects.for_org(org).select_related(
            "key_result__objective__cycle", "key_result__organization").get(pk=source.pk))
        try:
            fields = parse_webhook_body(source.key_result, body)
            check_in = _check_in(source, **fields)
        except (ValueError, ValidationError) as exc:
            record_failure(source, _message(exc), now=now)
            raise Refused(422, _message(exc)) from None
        record_success(source, now=now)
    return check_in


def parse_webhook_body(key_result, body):
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ValueError('Send a JSON object: {"value": 42, "note": "…"}.')
    note = data.get("note") or ""
    if not isinstance(note, str):
        raise ValueError("“note” must be a string.")
    if key_result.is_milestone:
        if "done" not in data:
            raise ValueError('This key result is a milestone: send {"done": true} or '
                             '{"done": false}.')
        return {"is_done": as_done(data["done"]), "note": note}
    if "value" not in data:
        raise ValueError('Send the new value: {"value": 42}.')
    return {"value": as_number(data["value"]), "note": note}


# (b) The scheduled pull ------------------------------------------------------------------------


def claim_due(*, now=None, limit=200):
    """Ids of pull sources due now, each claimed by moving its next pull one interval on (a
    conditional UPDATE: a source is claimed by one sweep only)."""
    now = now or timezone.now()
    claimed = []
    with scopes_disabled():
        due = list(DataSource.objects.filter(
            kind=Kind.PULL, is_active=True, next_pull_at__lte=now).exclude(
            key_result__objective__cycle__status=Cycle.Status.CLOSED).order_by(
            "next_pull_at", "pk").values_list("pk", "next_pull_at", "interval_minutes")[:limit])
        for pk, at, minutes in due:
            if DataSource.objects.filter(pk=pk, next_pull_at=at).update(
                    next_pull_at=now + timedelta(minutes=minutes)):
                claimed.append(pk)
    return claimed


def pull(source_id, *, now=None):
    """Fetch the source's document, read the value at its path and check it in. Returns the
    check-in, or None when it failed (the error is recorded on the source)."""
    with scopes_disabled():
        source = (DataSource.objects.select_related("organization").filter(
            pk=source_id, kind=Kind.PULL).first())
    if source is None:
        return None
    org = source.organization
    with scope(organization=org):
        source = (DataSource.objects.for_org(org).select_related(
            "key_result__objective__cycle", "key_result__organization").get(pk=source.pk))
        key_result = source.key_result
        try:
            document = http.get_json(source.url, **fetch_options(org))
            value = resolve_path(document, source.json_path)
            if key_result.is_milestone:
                check_in = _check_in(source, is_done=as_done(value), note="Scheduled pull")
            else:
                check_in = _check_in(source, value=as_number(value), note="Scheduled pull")
        except (http.FetchError, ValueError, ValidationError) as exc:
            record_failure(source, _message(exc), now=now)
            return None
        record_success(source, now=now)
    return check_in


# (c) The CSV of dated values ------------------------------------------------------------------


class CsvRow:
    def __init__(self, line, day, value, is_done, note):
        self.line, self.day, self.value, self.is_done, self.note = (
            line, day, value, is_done, note)


def read_csv(key_result, data, *, now=None):
    """Rows and errors of a CSV of dated values (``date,value,note``; a header row is
    optional): ([CsvRow], [(line, column, message)]). Nothing is written."""
    now = now or timezone.now()
    errors, rows = [], []
    if len(data) > MAX_CSV_BYTES:
        return [], [(0, "file", f"The file is larger than {MAX_CSV_BYTES // 1000:,} KB.")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [(0, "file", "The file is not UTF-8 text. Save it as CSV UTF-8.")]
    cycle = key_result.objective.cycle
    tz = ZoneInfo(key_result.organization.timezone)
    today = now.astimezone(tz).date()
    seen = {}
    for line, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not any(cell.strip() for cell in record):
            continue
        if line == 1 and record and record[0].strip().lower() == "date":
            continue  # the header
        if len(rows) + len(errors) >= MAX_CSV_ROWS:
            errors.append((line, "file", f"At most {MAX_CSV_ROWS} rows in one file."))
            break
        cells = [c.strip() for c in record] + ["", ""]
        day_text, value_text, note = cells[0], cells[1], ",".join(record[2:]).strip()
        bad = []
        try:
            day = datetime.strptime(day_text, "%Y-%m-%d").date()
        except ValueError:
            day = None
            bad.append((line, "date", f"“{day_text[:20]}” is not a date like 2026-03-31."))
        if day is not None:
            if day > today:
                bad.append((line, "date", "The date is in the future."))
            elif not (cycle.start_date <= day <= cycle.end_date):
                bad.append((line, "date", f"The date is outside the cycle "
                                          f"({cycle.start_date:%Y-%m-%d} to "
                                          f"{cycle.end_date:%Y-%m-%d})."))
            elif day in seen:
                bad.append((line, "date", f"Line {seen[day]} has the same date."))
            else:
                seen[day] = line
        value = is_done = None
        try:
            if key_result.is_milestone:
                is_done = as_done(value_text)
            elif not value_text:
                raise ValueError("Give the value.")
            else:
                value = as_number(value_text)
        except ValueError as exc:
            bad.append((line, "value", str(exc)))
        if len(note) > 2000:
            bad.append((line, "note", "The note is longer than 2,000 characters."))
        if bad:
            errors.extend(bad)
        else:
            rows.append(CsvRow(line, day, value, is_done, note))
    if not rows and not errors:
        errors.append((0, "file", "The file has no rows. Give one line per date: "
                                  "date,value,note."))
    return sorted(rows, key=lambda r: r.day), errors


def import_csv(*, membership, key_result, data, now=None):
    """Check in every row of the CSV, oldest first, all or nothing. Returns the check-ins;
    raises ValidationError with every error by line and column."""
    _check_manage(membership, key_result)
    now = now or timezone.now()
    rows, errors = read_csv(key_result, data, now=now)
    if errors:
        raise ValidationError([f"Line {line}, {column}: {message}" if line else message
                               for line, column, message in errors])
    tz = ZoneInfo(key_result.organization.timezone)
    check_ins = []
    with transaction.atomic():
        for row in rows:
            at = datetime.combine(row.day, time(12), tzinfo=tz)
            at = min(at, now)
            try:
                check_ins.append(record_source_check_in(
                    key_result=key_result, source=CheckIn.Source.DATA_SOURCE, value=row.value,
                    is_done=row.is_done, note=row.note, at=at))
            except ValidationError as exc:
                raise ValidationError(
                    [f"Line {row.line}: {m}" for m in exc.messages]) from None
    return check_ins
