"""factory-boy factories for every model. They disable the organization scope on purpose: a
factory is test set-up, not a request. Every object lands in one organization unless a test
passes another."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from django_scopes import scopes_disabled
from factory.django import DjangoModelFactory

from okrs.models import KPI, CheckIn, KeyResult, Objective
from orgs.models import Cycle, Invitation, Membership, Organization, Role, Team, User


class ScopeFreeFactory(DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        with scopes_disabled():
            super()._after_postgeneration(instance, create, results)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["email"]
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.django.Password("password")


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class TeamFactory(ScopeFreeFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")
    kind = Team.Kind.TEAM
    parent = factory.LazyAttribute(
        lambda o: company_of(o.organization) if o.kind != Team.Kind.COMPANY else None
    )


def company_of(org):
    with scopes_disabled():
        company = Team.objects.filter(organization=org, kind=Team.Kind.COMPANY).first()
    return company or TeamFactory(organization=org, name=org.name, kind=Team.Kind.COMPANY)


class MembershipFactory(ScopeFreeFactory):
    class Meta:
        model = Membership
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        if create and extracted:
            self.teams.set(extracted)


class CycleFactory(ScopeFreeFactory):
    class Meta:
        model = Cycle

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"2027 Q{n % 4 + 1} #{n}")
    start_date = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=45))
    end_date = factory.LazyAttribute(lambda o: o.start_date + timedelta(days=90))
    status = Cycle.Status.ACTIVE


class ObjectiveFactory(ScopeFreeFactory):
    class Meta:
        model = Objective

    organization = factory.SubFactory(OrganizationFactory)
    cycle = factory.SubFactory(CycleFactory, organization=factory.SelfAttribute("..organization"))
    team = factory.LazyAttribute(lambda o: company_of(o.organization))
    parent = None
    title = factory.Sequence(lambda n: f"Objective {n}")
    state = Objective.State.PUBLISHED


class KeyResultFactory(ScopeFreeFactory):
    class Meta:
        model = KeyResult

    objective = factory.SubFactory(ObjectiveFactory)
    organization = factory.SelfAttribute("objective.organization")
    owner_team = factory.SelfAttribute("objective.team")
    title = factory.Sequence(lambda n: f"Key result {n}")
    kind = KeyResult.Kind.NUMERIC
    start_value = Decimal("0")
    target_value = Decimal("100")
    current_value = Decimal("0")
    unit = "%"


class CheckInFactory(ScopeFreeFactory):
    class Meta:
        model = CheckIn

    key_result = factory.SubFactory(KeyResultFactory)
    organization = factory.SelfAttribute("key_result.organization")
    value = Decimal("10")
    confidence = "on_track"
    created_at = factory.LazyFunction(timezone.now)


class InvitationFactory(ScopeFreeFactory):
    class Meta:
        model = Invitation

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.test")
    role = Role.MEMBER


class DependencyFactory(ScopeFreeFactory):
    """``downstream`` and ``upstream`` are objectives or key results of one organization."""

    class Meta:
        model = "dependencies.Dependency"
        exclude = ["downstream", "upstream"]

    downstream = factory.SubFactory(KeyResultFactory)
    upstream = factory.SubFactory(KeyResultFactory)
    organization = factory.SelfAttribute("downstream.organization")
    cycle = factory.LazyAttribute(lambda o: _objective(o.downstream).cycle)
    downstream_objective = factory.LazyAttribute(lambda o: _if(o.downstream, Objective))
    downstream_key_result = factory.LazyAttribute(lambda o: _if(o.downstream, KeyResult))
    upstream_objective = factory.LazyAttribute(lambda o: _if(o.upstream, Objective))
    upstream_key_result = factory.LazyAttribute(lambda o: _if(o.upstream, KeyResult))
    requesting_team = factory.LazyAttribute(lambda o: _team(o.downstream))
    providing_team = factory.LazyAttribute(lambda o: _team(o.upstream))
    need = "The feature, in production"
    needed_by = factory.LazyAttribute(lambda o: o.cycle.end_date)
    fallback = "We sell without it"
    status = "committed"


def _if(node, model):
    return node if isinstance(node, model) else None


def _objective(node):
    return node if isinstance(node, Objective) else node.objective


def _team(node):
    return node.team if isinstance(node, Objective) else node.owner_team


class ObjectiveShareFactory(ScopeFreeFactory):
    class Meta:
        model = "dependencies.ObjectiveShare"

    objective = factory.SubFactory(ObjectiveFactory)
    organization = factory.SelfAttribute("objective.organization")
    team = factory.SubFactory(TeamFactory, organization=factory.SelfAttribute("..organization"))
    kind = "objective"


class ContributionFactory(ScopeFreeFactory):
    """A request that ``key_result`` feed ``shared`` (waiting for an answer)."""

    class Meta:
        model = "dependencies.Contribution"

    key_result = factory.SubFactory(KeyResultFactory)
    organization = factory.SelfAttribute("key_result.organization")
    shared = factory.SubFactory(KeyResultFactory,
                                objective=factory.SelfAttribute("..key_result.objective"))


class RecoveryActionFactory(ScopeFreeFactory):
    class Meta:
        model = "dependencies.RecoveryAction"

    objective = factory.SubFactory(ObjectiveFactory)
    organization = factory.SelfAttribute("objective.organization")
    title = factory.Sequence(lambda n: f"Recovery step {n}")
    owner = factory.SubFactory(UserFactory)
    due_date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=14))


class WorkflowFactory(ScopeFreeFactory):
    class Meta:
        model = "alignment.Workflow"

    objective = factory.SubFactory(ObjectiveFactory)
    organization = factory.SelfAttribute("objective.organization")
    cycle = factory.SelfAttribute("objective.cycle")


class StakeholderFactory(ScopeFreeFactory):
    class Meta:
        model = "alignment.Stakeholder"

    workflow = factory.SubFactory(WorkflowFactory)
    organization = factory.SelfAttribute("workflow.organization")
    team = factory.SubFactory(TeamFactory, organization=factory.SelfAttribute("..organization"))
    owner = factory.SubFactory(UserFactory)
    role = "contributor"


class MilestoneFactory(ScopeFreeFactory):
    class Meta:
        model = "alignment.Milestone"

    workflow = factory.SubFactory(WorkflowFactory)
    organization = factory.SelfAttribute("workflow.organization")
    title = factory.Sequence(lambda n: f"Milestone {n}")
    due_date = factory.LazyAttribute(lambda o: o.workflow.cycle.end_date)


class RecascadeFlagFactory(ScopeFreeFactory):
    class Meta:
        model = "alignment.RecascadeFlag"

    objective = factory.SubFactory(ObjectiveFactory)
    organization = factory.SelfAttribute("objective.organization")
    source = factory.SelfAttribute("objective.parent")
    change = "The parent changed its title."


class ChatChannelFactory(ScopeFreeFactory):
    class Meta:
        model = "nudges.ChatChannel"

    organization = factory.SubFactory(OrganizationFactory)
    team = None
    tool = "generic"
    url = "http://127.0.0.1:9/hook"
    secret = factory.Sequence(lambda n: f"secret-{n:032d}")


class KPIFactory(ScopeFreeFactory):
    """A KPI of a team's scorecard: higher is better, healthy from 99, warning from 95."""

    class Meta:
        model = KPI

    team = factory.SubFactory(TeamFactory)
    organization = factory.LazyAttribute(lambda o: o.team.organization)
    name = factory.Sequence(lambda n: f"KPI {n}")
    unit = "%"
    healthy_at = Decimal("99")
    warning_at = Decimal("95")
