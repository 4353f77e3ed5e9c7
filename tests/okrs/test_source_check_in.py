"""A check-in no person typed (a data source, a service token, an import) goes through the same
cleaning and the same copy onto the key result, and says where it came from."""
import pytest
from django.core.exceptions import ValidationError
from django_scopes import scope

from okrs.models import CheckIn
from okrs.services import record_source_check_in
from orgs.models import Cycle
from tests.factories import KeyResultFactory

pytestmark = pytest.mark.django_db


def test_a_data_source_value_is_a_check_in_by_no_one_that_moves_the_key_result():
    kr = KeyResultFactory(start_value=0, target_value=100)
    with scope(organization=kr.organization):
        check_in = record_source_check_in(key_result=kr, source=CheckIn.Source.DATA_SOURCE,
                                          value="42", note="nightly export")
    kr.refresh_from_db()
    assert check_in.author is None
    assert check_in.source == "data_source"
    assert check_in.confidence == "on_track"  # a first check-in with no confidence given
    assert kr.current_value == 42


def test_a_source_check_in_is_refused_in_a_closed_cycle():
    kr = KeyResultFactory(start_value=0, target_value=100)
    cycle = kr.objective.cycle
    cycle.status = Cycle.Status.CLOSED
    cycle.save(update_fields=["status"])
    with scope(organization=kr.organization), pytest.raises(ValidationError):
        record_source_check_in(key_result=kr, source=CheckIn.Source.DATA_SOURCE, value="1")
    with scope(organization=kr.organization):
        assert not CheckIn.objects.for_org(kr.organization).filter(key_result=kr).exists()
