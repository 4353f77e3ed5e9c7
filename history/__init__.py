"""The append-only history of every change. What callers use:

- ``update(queryset, **changes)``: ``queryset.update()``, recorded;
- ``record_change(instance, {field: (before, after)})``: a change the signals did not see;
- ``acting_as(actor)`` / ``paused()``: who acts (default: the request's person, a task's
  "system"), or record nothing (loading a generated organization);
- ``track(Model, "type", ...)``: record another model's changes.
"""

from .capture import record_change, track, update
from .context import SYSTEM, Actor, acting_as, current_actor, paused, person


def actor_of_check_in(author, source):
    """Who a check-in's change to its key result is credited to: its author, else what sent
    it (a data source, an API token, an import: the request tells which token)."""
    if author is not None:
        return person(author)
    if source == "data_source":
        return Actor("data_source", "data source")
    return None  # the request's token, or "system"


__all__ = ["SYSTEM", "Actor", "acting_as", "actor_of_check_in", "current_actor", "paused",
           "person", "record_change", "track", "update"]
