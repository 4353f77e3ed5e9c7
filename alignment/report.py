"""Load one cycle's data for the misalignment rules (a fixed number of queries) and run them."""

from collections import Counter

from django.utils import timezone

from dependencies.models import Dependency
from okrs.models import KeyResult, Objective

from . import rules


def cycle_data(org, cycle, *, now=None):
    objectives = [
        rules.Objective(
            id=o["id"], title=o["title"], team_id=o["team_id"], team=o["team__name"],
            team_kind=o["team__kind"], parent_id=o["parent_id"], is_local=o["is_local"],
            state=o["state"], owner_id=o["team__lead_id"], owner=o["team__lead__full_name"] or "",
            theme=o["theme__name"] or "")
        for o in Objective.objects.for_org(org).filter(cycle=cycle).exclude(state="retired")
        .values("id", "title", "team_id", "team__name", "team__kind", "parent_id", "is_local",
                "state", "team__lead_id", "team__lead__full_name", "theme__name")
    ]
    key_results = [
        rules.KeyResult(id=k["id"], objective_id=k["objective_id"], title=k["title"],
                        created_at=k["created_at"], last_check_in_at=k["last_check_in_at"])
        for k in KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
        .exclude(objective__state="retired")
        .values("id", "objective_id", "title", "created_at", "last_check_in_at")
    ]
    dependencies = [
        rules.Dependency(id=d["id"], status=d["status"], created_at=d["created_at"],
                         requesting_team=d["requesting_team__name"],
                         providing_team=d["providing_team__name"], need=d["need"])
        for d in Dependency.objects.for_org(org).filter(cycle=cycle, status="requested")
        .values("id", "status", "created_at", "requesting_team__name", "providing_team__name",
                "need")
    ]
    return rules.Cycle(objectives=objectives, key_results=key_results, dependencies=dependencies,
                       alignment_model=org.alignment_model,
                       local_share_limit=org.local_share_limit / 100,
                       escalate_after_days=org.escalate_after_days,
                       now=now or timezone.now())


def findings(org, cycle, *, now=None):
    if cycle is None:
        return []
    return rules.run_all(cycle_data(org, cycle, now=now))


def counts(found):
    by = Counter(f.severity for f in found)
    return {"total": len(found), "high": by[rules.HIGH], "medium": by[rules.MEDIUM],
            "low": by[rules.LOW]}


def for_objective(found, objective_id):
    return [f for f in found if f.objective_id == objective_id]
