"""What a team's type means: the sharing kind that usually fits it, and the report's two type
findings (an enabling team nobody draws on, a product team working as a silo).

Links between two teams in a cycle, read as "who uses whose work":
- a dependency: the requesting team uses the providing team's work;
- a key result feeding another team's key result: the fed team uses the feeding team's work;
- a key result owned under another team's objective: that objective's team uses it;
- a shared objective: both teams use each other's work.
Withdrawn and declined dependencies, retired objectives and another cycle's links do not count.
"""

from collections import defaultdict

from django.db.models import F

from .models import Team

HINTS = {
    Team.TeamType.ENABLING: (
        "{name} is an enabling team: it usually shares a key result. Its key result feeds the "
        "product teams' key results that build on it, rather than owning their objectives."),
    Team.TeamType.PRODUCT: (
        "{name} is a product team: it usually owns whole objectives, shares them with the "
        "teams that help, and draws on enabling teams' key results."),
    Team.TeamType.SHARED: (
        "{name} is a shared service: other teams usually depend on it for a milestone by a "
        "date, recorded as a dependency, rather than sharing its OKRs."),
}


def sharing_hint(team):
    """One sentence on the sharing kind that usually fits the team's type ("" for the
    company)."""
    if team is None or team.kind == Team.Kind.COMPANY:
        return ""
    return HINTS.get(team.team_type, "").format(name=team.name)


def usage(org, cycle):
    """(uses, used_by): for each team id, the other teams whose work it uses, and the other
    teams that use its work, in ``cycle``. Four queries of distinct team pairs."""
    from dependencies.models import Dependency, ObjectiveShare
    from okrs.models import KeyResult

    uses, used_by = defaultdict(set), defaultdict(set)

    def link(user, provider):
        if user != provider and user is not None and provider is not None:
            uses[user].add(provider)
            used_by[provider].add(user)

    deps = (Dependency.objects.for_org(org).filter(cycle=cycle)
            .exclude(status__in=[Dependency.Status.WITHDRAWN, Dependency.Status.DECLINED])
            .values_list("requesting_team_id", "providing_team_id").distinct().order_by())
    for user, provider in deps:
        link(user, provider)
    live = KeyResult.objects.for_org(org).filter(objective__cycle=cycle).exclude(
        objective__state="retired")
    for provider, user in (live.filter(feeds__isnull=False)
                           .values_list("owner_team_id", "feeds__owner_team_id")
                           .distinct().order_by()):
        link(user, provider)
    for provider, user in (live.exclude(owner_team_id=F("objective__team_id"))
                           .values_list("owner_team_id", "objective__team_id")
                           .distinct().order_by()):
        link(user, provider)
    for a, b in (ObjectiveShare.objects.for_org(org).filter(objective__cycle=cycle)
                 .exclude(objective__state="retired")
                 .values_list("objective__team_id", "team_id").distinct().order_by()):
        link(a, b)
        link(b, a)
    return uses, used_by


def findings(org, cycle, *, limit=10):
    """The report's type findings for ``cycle``: ``{"enabling": (count, first teams),
    "silos": (count, first teams)}``. Teams (not the company or departments) only; a silo is a
    product team with objectives in the cycle that uses no one's work and whose work no one
    uses."""
    from okrs.models import Objective

    if cycle is None:
        return {"enabling": (0, []), "silos": (0, [])}
    uses, used_by = usage(org, cycle)
    teams = Team.objects.for_org(org).filter(kind=Team.Kind.TEAM).select_related("lead")
    enabling = teams.filter(team_type=Team.TeamType.ENABLING).exclude(
        pk__in=list(used_by)).order_by("name", "pk")
    with_okrs = Objective.objects.for_org(org).filter(cycle=cycle).live().values("team_id")
    silos = (teams.filter(team_type=Team.TeamType.PRODUCT, pk__in=with_okrs)
             .exclude(pk__in=list(set(uses) | set(used_by))).order_by("name", "pk"))
    return {"enabling": (enabling.count(), list(enabling[:limit])),
            "silos": (silos.count(), list(silos[:limit]))}
