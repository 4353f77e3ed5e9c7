"""One access helper per entity: scoped to the organization inside the query, 404 alike for
"does not exist" and "belongs to another organization", 403 only for a member who may read but
not write."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from orgs import permissions
from orgs.models import Team

from .models import CheckIn, KeyResult, Objective


def access_objective(membership, pk, *, write=False):
    objective = (
        Objective.objects.for_org(membership.organization)
        .with_key_results()
        .filter(pk=pk)
        .first()
    )
    if objective is None:
        raise Http404("No such objective.")
    if write and objective.is_retired:
        raise PermissionDenied("This objective is retired; it can no longer be changed.")
    if write and not permissions.can_edit_objective(membership, objective):
        raise PermissionDenied("You can change objectives only of teams you lead.")
    return objective


def access_key_result(membership, pk, *, write=False, check_in=False):
    key_result = (
        KeyResult.objects.for_org(membership.organization)
        .select_related("objective__team", "objective__cycle", "owner_team", "owner")
        .filter(pk=pk)
        .first()
    )
    if key_result is None:
        raise Http404("No such key result.")
    if write and not permissions.can_edit_objective(membership, key_result.objective):
        raise PermissionDenied("You can change key results only of teams you lead.")
    if check_in and not permissions.can_check_in(membership, key_result):
        raise PermissionDenied("You can check in only on key results of your teams.")
    return key_result


def access_check_in(membership, pk):
    """A check-in to correct: 404 unless it is this organization's, 403 unless the person may
    check in on its key result."""
    check_in = (
        CheckIn.objects.for_org(membership.organization)
        .select_related("key_result__objective__team", "key_result__objective__cycle",
                        "key_result__owner_team", "key_result__owner", "author")
        .filter(pk=pk)
        .first()
    )
    if check_in is None:
        raise Http404("No such check-in.")
    if not permissions.can_check_in(membership, check_in.key_result):
        raise PermissionDenied("You can correct check-ins only on key results of your teams.")
    return check_in


def access_team(membership, pk):
    team = Team.objects.for_org(membership.organization).select_related("lead").filter(
        pk=pk).first()
    if team is None:
        raise Http404("No such team.")
    return team
