"""Lookups of the network's rows, scoped to the organization: 404 alike for missing and foreign."""

from django.http import Http404

from okrs.models import KeyResult, Objective

from .models import Contribution, Dependency, Notification, ObjectiveShare, RecoveryAction


def _one(qs, pk, what):
    row = qs.filter(pk=pk).first()
    if row is None:
        raise Http404(f"No such {what}.")
    return row


def access_dependency(membership, pk):
    org = membership.organization
    return _one(Dependency.objects.for_org(org).with_ends(), pk, "dependency")


def access_share(membership, pk):
    return _one(ObjectiveShare.objects.for_org(membership.organization)
                .select_related("objective__cycle", "objective__team", "team"), pk, "share")


def access_contribution(membership, pk):
    return _one(Contribution.objects.for_org(membership.organization).select_related(
        "key_result__objective__cycle", "key_result__objective__team", "key_result__owner_team",
        "shared__objective__cycle", "shared__objective__team", "shared__owner_team"),
        pk, "contribution")


def access_recovery_action(membership, pk):
    return _one(RecoveryAction.objects.for_org(membership.organization)
                .select_related("objective__team"), pk, "recovery action")


def access_node(membership, kind, pk):
    """An objective ("o") or key result ("k") of this organization."""
    org = membership.organization
    if kind == "o":
        return _one(Objective.objects.for_org(org).select_related("team", "cycle"), pk,
                    "objective")
    if kind == "k":
        return _one(KeyResult.objects.for_org(org).select_related(
            "objective__team", "objective__cycle", "owner_team", "owner"), pk, "key result")
    raise Http404("No such item.")


def notifications_of(membership):
    return Notification.objects.for_org(membership.organization).filter(user=membership.user)
