"""Reads of the history: an object's timeline and the console's search."""

import datetime

from django.core.paginator import Paginator
from django.db.models import Q

from .models import Change

PER_PAGE = 25
OBJECT_TYPES = {
    "objective": "objective", "key_result": "key result", "team": "team",
    "dependency": "dependency", "share": "share", "key_result_link": "key result link",
    "workflow": "alignment workflow", "stakeholder": "stakeholder", "milestone": "milestone",
    "workflow_step": "workflow step", "organization": "organization settings",
    "cycle": "cycle", "theme": "theme", "membership": "membership",
    "perspective": "perspective", "strategic_goal": "strategic goal",
    "also_contributes": "extra parent", "kpi": "KPI", "kpi_value": "KPI value",
}


def type_words(object_type):
    return OBJECT_TYPES.get(object_type, object_type.replace("_", " "))


def timeline(org, object_type, object_id, page_number):
    """One page of an object's history, newest first, with the parts recorded within it."""
    entries = Change.objects.for_org(org).of(object_type, object_id).order_by("-at", "-pk")
    return Paginator(entries, PER_PAGE).get_page(page_number)


def _date(text):
    try:
        return datetime.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def search(org, params):
    """The console's search: by person (name), object type, date range and text."""
    entries = Change.objects.for_org(org)
    person = (params.get("person") or "").strip()
    if person:
        entries = entries.filter(actor_label__icontains=person)
    object_type = params.get("type") or ""
    if object_type in OBJECT_TYPES:
        entries = entries.filter(object_type=object_type)
    since, until = _date(params.get("from")), _date(params.get("to"))
    if since:
        entries = entries.filter(at__date__gte=since)
    if until:
        entries = entries.filter(at__date__lte=until)
    text = (params.get("q") or "").strip()
    if text:
        entries = entries.filter(Q(object_label__icontains=text)
                                 | Q(fields__icontains=text))
    return entries.order_by("-at", "-pk")
