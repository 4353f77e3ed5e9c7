import pytest
from django_scopes import scopes_disabled

from orgs.models import Role, Team
from tests.dependencies.conftest import revenue  # noqa: F401 - the shared scenario
from tests.factories import MembershipFactory, TeamFactory, UserFactory, WorkflowFactory


@pytest.fixture
def flow(revenue):  # noqa: F811
    """The revenue scenario plus Marketing, and a workflow on the company objective run by
    Liam, the alignment lead."""
    r = revenue
    with scopes_disabled():
        r.noah = UserFactory(email="noah@a.test", full_name="Noah Marketing")
        r.marketing = TeamFactory(organization=r.org, name="Marketing",
                                  kind=Team.Kind.DEPARTMENT, lead=r.noah)
        r.noah_m = MembershipFactory(organization=r.org, user=r.noah, role=Role.TEAM_LEAD,
                                     teams=[r.marketing])
        r.workflow = WorkflowFactory(objective=r.arr, lead=r.liam)
    return r
