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

from . import versions
from .trees import allocate_tree_ids, repair_trees


class _Versioned:
    """Writes that send no signal still move the cached reads' versions (``orgs.versions``)."""

    def update(self, **kwargs):
        count = super().update(**kwargs)
        if count:
            versions.bump_for_queryset(self.model, fields=kwargs)
        return count

    def bulk_create(self, objs, *args, **kwargs):
        made = super().bulk_create(objs, *args, **kwargs)
        if made:
            versions.bump_for_queryset(self.model, made)
        return made


class OrgQuerySet(_Versioned, models.QuerySet):
    def for_org(self, org):
        return self.filter(organization=org)


class OrgTreeQuerySet(_Versioned, TreeQuerySet):
    def for_org(self, org):
        return self.filter(organization=org)

    def in_tree_order(self):
        """Depth first, trees ordered by their root's name or title (``order_insertion_by``):
        tree ids only say which tree was made first."""
        opts = self.model._mptt_meta
        key = opts.order_insertion_by[0] if opts.order_insertion_by else "pk"
        root = self.model._base_manager.filter(
            tree_id=models.OuterRef("tree_id"), parent=None
        ).values(key)[:1]
        return self.annotate(tree_root_key=models.Subquery(root)).order_by(
            "tree_root_key", "tree_id", "lft"
        )


class OrgTreeManager(TreeManager):
    """django-mptt's manager, made safe for trees of many organizations in one table.

    mptt orders root nodes by tree id: it inserts a root beside another by adding one to every
    larger tree id in the table, and moves roots by renumbering a range of tree ids. Through a
    scoped manager that either renumbers only the current organization's trees (so they collide
    with other organizations' tree ids) or, with raw SQL, renumbers every organization's. Here
    tree ids are never renumbered: each new tree gets a fresh id from ``allocate_tree_ids``
    (outside the tenant scope), so every raw UPDATE of mptt, which filters by tree id, stays
    inside one tree of one organization. Roots are therefore not ordered by tree id: pages
    order them by name or title.
    """

    def _get_next_tree_id(self):
        return allocate_tree_ids(self.model._meta.db_table, using=self.db)[0]

    def _create_tree_space(self, target_tree_id, num_trees=1):
        """Never shift tree ids (a gap in the numbering is harmless)."""

    def insert_node(self, node, target, position="last-child", save=False,
                    allow_existing_pk=False, refresh_target=True):
        if target is not None and target.is_root_node() and position in ("left", "right"):
            target = None  # "beside a root" is a new tree of its own
        return super().insert_node(node, target, position, save=save,
                                   allow_existing_pk=allow_existing_pk,
                                   refresh_target=refresh_target)

    def _move_node(self, node, target, position="last-child", save=True, refresh_target=True):
        if (target is not None and target.is_root_node() and position in ("left", "right")
                and not self.tree_model._mptt_is_tracking):
            # "Beside a root": a child becomes the root of a new tree; a root stays where it is.
            if node.is_child_node():
                self._make_child_root_node(node)
            return None
        return super()._move_node(node, target, position, save=save,
                                  refresh_target=refresh_target)

    def rebuild(self, batch_size=1000, **filters):
        """Rebuild the trees this manager sees (one organization's inside its scope) from the
        parent links, keeping their tree ids unless another tree has the same one."""
        repair_trees(self.model, queryset=self.get_queryset(), using=self.db)

    def partial_rebuild(self, tree_id, batch_size=1000, **filters):
        self.rebuild()


def org_manager(queryset_class=OrgQuerySet):
    """A scoped manager for a plain tenant-owned model (pass a QuerySet subclass to extend it)."""
    return ScopedManager(
        organization="organization", _manager_class=models.Manager.from_queryset(queryset_class)
    )


def org_tree_manager(queryset_class=OrgTreeQuerySet):
    """The same for an MPTT model: the manager stays a TreeManager so mptt can maintain the tree."""
    return ScopedManager(
        organization="organization",
        _manager_class=OrgTreeManager.from_queryset(queryset_class),
    )
