"""The generated network (bench_propagation, the query-budget tests): on PostgreSQL its rows go
in with COPY, ids first; they read back as the ORM would have written them."""

import pytest
from django.db import connection
from django.utils import timezone
from django_scopes import scope

from dependencies import generate
from dependencies.models import Dependency
from okrs.models import KeyResult, Objective
from orgs.models import Team
from orgs.trees import find_problems
from tests.factories import CycleFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_a_generated_network_reads_back_whole_and_consistent():
    org = OrganizationFactory()
    cycle = CycleFactory(organization=org)
    before = timezone.now()
    with scope(organization=org):
        built = generate.build(org, cycle, 400)
        objectives = list(Objective.objects.for_org(org))
        krs = list(KeyResult.objects.for_org(org))
        deps = list(Dependency.objects.for_org(org))
        teams = Team.objects.for_org(org).count()
    assert built == {"objectives": 100, "key_results": 300, "dependencies": len(deps),
                     "teams": teams}
    assert len(objectives) == 100 and len(krs) == 300 and deps
    assert find_problems() == []  # nested sets, levels and parents agree, per organization
    roots = [o for o in objectives if o.parent_id is None]
    assert {o.level for o in roots} == {0} and len(roots) < len(objectives)
    by_pk = {k.pk: k for k in krs}
    fed = [k for k in krs if k.feeds_id]
    assert fed and all(k.feeds_id in by_pk for k in fed)  # the feeding links went in too
    for k in krs:
        assert k.kind == "numeric" and k.risk_causes == [] and k.effective_health == ""
        assert k.created_at >= before and k.version == 1 and k.weight == 1
    for d in deps:
        assert d.status == "committed" and d.created_at >= before
        assert by_pk[d.upstream_key_result_id].owner_team_id == d.providing_team_id
        assert d.upstream_key_result_id < d.downstream_key_result_id  # never a loop


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY and sequences: PostgreSQL")
def test_rows_inserted_with_copy_take_their_ids_from_the_sequence():
    org = OrganizationFactory()
    cycle = CycleFactory(organization=org)
    with scope(organization=org):
        generate.build(org, cycle, 40)
        last = KeyResult.objects.for_org(org).order_by("-pk").first()
        later = KeyResult.objects.create(
            organization=org, objective=last.objective, title="Made the ordinary way",
            owner_team=last.owner_team)
    assert later.pk > last.pk
