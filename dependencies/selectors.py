"""Reads of the network for the pages. Each loads what it shows in a fixed number of queries."""

from django.db.models import F, Q

from okrs.models import KeyResult, Objective

from .models import Dependency, NetworkState, ObjectiveShare, RecoveryAction
from .services import allowed_answers, is_escalated


def annotate(dependencies, membership):
    for d in dependencies:
        d.escalated = is_escalated(d)
        d.answers = allowed_answers(membership, d) if membership else []
    return dependencies


def objective_network(org, objective, membership):
    """Sharing links, dependencies both ways, contribution links and the recovery plan of one
    objective (its key results are already loaded on it)."""
    krs = list(objective.key_results.all())
    kr_ids = [k.pk for k in krs]
    shares = list(ObjectiveShare.objects.for_org(org).filter(objective=objective)
                  .select_related("team").order_by("team__name"))
    deps = annotate(list(
        Dependency.objects.for_org(org).with_ends()
        .filter(Q(downstream_objective=objective) | Q(downstream_key_result__in=kr_ids)
                | Q(upstream_objective=objective) | Q(upstream_key_result__in=kr_ids))
        .exclude(status=Dependency.Status.WITHDRAWN)
    ), membership)
    fed_by = list(KeyResult.objects.for_org(org).filter(feeds__in=kr_ids)
                  .select_related("owner_team", "objective"))
    feeds = {k.pk: k for k in KeyResult.objects.for_org(org)
             .filter(pk__in=[k.feeds_id for k in krs if k.feeds_id])
             .select_related("owner_team", "objective")}
    for k in krs:
        k.feeds_kr = feeds.get(k.feeds_id)
        k.fed_by = [c for c in fed_by if c.feeds_id == k.pk]
    other_owners = sorted({k.owner_team.name for k in krs if k.owner_team_id != objective.team_id})
    return {
        "shares": shares,
        "depends_on": [d for d in deps if d.downstream_objective_id == objective.pk
                       or d.downstream_key_result_id in kr_ids],
        "needed_by": [d for d in deps if d.upstream_objective_id == objective.pk
                      or d.upstream_key_result_id in kr_ids],
        "kr_owner_teams": other_owners,
        "contributions": [k for k in krs if k.feeds_kr or k.fed_by],
        "recovery_actions": list(RecoveryAction.objects.for_org(org).filter(objective=objective)
                                 .select_related("owner")),
    }


def team_links(org, team, cycle):
    """Every link between this team and another in the cycle, with its kind. Four queries."""
    links = []
    for s in (ObjectiveShare.objects.for_org(org).filter(objective__cycle=cycle)
              .filter(Q(team=team) | Q(objective__team=team))
              .exclude(objective__state=Objective.State.RETIRED)
              .select_related("team", "objective__team")):
        other = s.objective.team if s.team_id == team.pk else s.team
        links.append({"kind": s.get_kind_display(), "key": s.kind, "team": other,
                      "objective": s.objective, "what": s.objective.title})
    shared_objective_krs = (
        KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
        .exclude(objective__state=Objective.State.RETIRED)
        .filter(Q(owner_team=team) | Q(objective__team=team))
        .exclude(owner_team_id=F("objective__team_id"))
        .select_related("owner_team", "objective__team"))
    seen = set()
    for k in shared_objective_krs:
        other = k.objective.team if k.owner_team_id == team.pk else k.owner_team
        if (k.objective_id, other.pk) in seen:
            continue
        seen.add((k.objective_id, other.pk))
        links.append({"kind": "Only the objective shared", "key": "objective", "team": other,
                      "objective": k.objective, "what": k.objective.title})
    for k in (KeyResult.objects.for_org(org).filter(objective__cycle=cycle, feeds__isnull=False)
              .filter(Q(owner_team=team) | Q(feeds__owner_team=team))
              .exclude(owner_team_id=F("feeds__owner_team_id"))
              .select_related("owner_team", "objective", "feeds__owner_team", "feeds__objective")):
        other = k.feeds.owner_team if k.owner_team_id == team.pk else k.owner_team
        links.append({"kind": "Only a key result shared", "key": "key_result", "team": other,
                      "objective": k.feeds.objective, "what": f"{k.title} feeds {k.feeds.title}"})
    deps = list(Dependency.objects.for_org(org).with_ends().filter(cycle=cycle)
                .filter(Q(requesting_team=team) | Q(providing_team=team))
                .exclude(status=Dependency.Status.WITHDRAWN))
    for d in deps:
        d.escalated = is_escalated(d)
        d.direction = "needs" if d.requesting_team_id == team.pk else "provides"
    links.sort(key=lambda link: (link["team"].name, link["kind"]))
    return {"links": links, "dependencies": deps}


def at_risk_from_upstream(org, cycle):
    """Objectives and key results at risk because of something else, worst first."""
    order = {"off_track": 0, "at_risk": 1}
    objectives = list(Objective.objects.for_org(org).filter(cycle=cycle).live()
                      .exclude(risk_causes=[]).select_related("team"))
    krs = list(KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
               .exclude(objective__state=Objective.State.RETIRED).exclude(risk_causes=[])
               .select_related("owner_team", "objective"))
    items = [{"kind": "o", "node": o, "team": o.team, "objective_id": o.pk} for o in objectives]
    items += [{"kind": "k", "node": k, "team": k.owner_team, "objective_id": k.objective_id}
              for k in krs]
    items.sort(key=lambda i: (order.get(i["node"].effective_health, 2), i["team"].name,
                              i["node"].title))
    return items


def dependencies_for(org, cycle, membership, *, mine_team_ids=None):
    qs = (Dependency.objects.for_org(org).with_ends().filter(cycle=cycle)
          .exclude(status=Dependency.Status.WITHDRAWN))
    if mine_team_ids is not None:
        qs = qs.filter(Q(requesting_team_id__in=mine_team_ids)
                       | Q(providing_team_id__in=mine_team_ids))
    return annotate(list(qs), membership)


def skipped_rows(org, cycle):
    """What the last recompute of ``cycle`` could not assess and left out (first 20)."""
    state = NetworkState.objects.for_org(org).filter(cycle=cycle).values("skipped").first()
    return (state or {}).get("skipped", [])[:20]
