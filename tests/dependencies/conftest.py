"""The revenue scenario of the network tests: the company wants "Reach $12M ARR"; Sales wins
enterprise customers, which needs Engineering to ship SSO."""

from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from orgs.models import Role, Team
from tests.factories import (
    DependencyFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)


class Revenue:
    pass


@pytest.fixture
def revenue(world_a):
    with scopes_disabled():
        return _revenue(world_a)


def _revenue(world_a):
    r = Revenue()
    r.world, r.org, r.cycle = world_a, world_a.org, world_a.cycle
    r.ethan = UserFactory(email="ethan@a.test", full_name="Ethan Engineering")
    r.mia = UserFactory(email="mia@a.test", full_name="Mia Sales")
    r.liam = UserFactory(email="liam@a.test", full_name="Liam Alignment")
    r.eng = TeamFactory(organization=r.org, name="Engineering", kind=Team.Kind.DEPARTMENT,
                        lead=r.ethan)
    r.sales = TeamFactory(organization=r.org, name="Sales", kind=Team.Kind.DEPARTMENT,
                          lead=r.mia)
    r.ethan_m = MembershipFactory(organization=r.org, user=r.ethan, role=Role.TEAM_LEAD,
                                  teams=[r.eng])
    r.mia_m = MembershipFactory(organization=r.org, user=r.mia, role=Role.TEAM_LEAD,
                                teams=[r.sales])
    r.liam_m = MembershipFactory(organization=r.org, user=r.liam, role=Role.ALIGNMENT_LEAD)
    r.arr = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=world_a.company,
                             title="Reach $12M ARR")
    r.win = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales, parent=r.arr,
                             title="Win enterprise customers")
    # Half the cycle has gone: 60% done is on pace.
    r.deals = KeyResultFactory(objective=r.win, title="Close 3 enterprise deals", owner=r.mia,
                               current_value=Decimal(60), confidence="on_track")
    r.platform = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, parent=r.arr,
                                  title="Make the platform enterprise-ready")
    r.sso = KeyResultFactory(objective=r.platform, title="Ship SSO", owner=r.ethan,
                             kind="milestone", start_value=None, target_value=None,
                             current_value=None, confidence="on_track")
    r.dependency = DependencyFactory(downstream=r.deals, upstream=r.sso)
    return r
