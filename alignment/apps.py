from django.apps import AppConfig
from django.db.models.signals import m2m_changed


def _links_changed(sender, instance, action, **kwargs):
    """A workflow's success measures or a milestone's links changed: ``.set()`` and ``.add()``
    write the link table alone, which no version listens to."""
    if action.startswith("post_"):
        from orgs import versions

        versions.bump(getattr(instance, "organization_id", None), ("workflow",))


class AlignmentConfig(AppConfig):
    name = "alignment"
    verbose_name = "Cross-team alignment workflow"

    def ready(self):
        from .models import Milestone, Workflow

        for through in (Workflow.success_measures.through, Milestone.waits_on.through,
                        Milestone.dependencies.through):
            m2m_changed.connect(_links_changed, sender=through,
                                dispatch_uid=f"versions:{through._meta.label}")
