"""The tenancy guard.

Every tenant-owned model uses ``org_manager()``: a django-scopes ``ScopedManager`` whose queries
raise ``ScopeError`` unless an organization scope is open (``with scope(organization=org)``).
The org view decorator opens it for requests, tasks and commands open it explicitly, and the
Django admin and factories disable it on purpose. ``for_org(org)`` is the explicit filter every
lookup still goes through, so the scope is a second wall, not the only one.
"""

from django.db import models
from django_scopes import ScopedManager
from mptt.managers import TreeManager
from mptt.querysets import TreeQuerySet


class OrgQuerySet(models.QuerySet):
    def for_org(self, org):
        return self.filter(organization=org)


class OrgTreeQuerySet(TreeQuerySet):
    def for_org(self, org):
        return self.filter(organization=org)


def org_manager(queryset_class=OrgQuerySet):
    """A scoped manager for a plain tenant-owned model (pass a QuerySet subclass to extend it)."""
    return ScopedManager(
        organization="organization", _manager_class=models.Manager.from_queryset(queryset_class)
    )


def org_tree_manager(queryset_class=OrgTreeQuerySet):
    """The same for an MPTT model: the manager stays a TreeManager so mptt can maintain the tree."""
    return ScopedManager(
        organization="organization", _manager_class=TreeManager.from_queryset(queryset_class)
    )
