"""Corrections: a mistaken check-in is edited or deleted (kept in the history as corrected, with
who and when), a key result with no check-ins is deleted, a retired objective comes back."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment.models import RecascadeFlag
from okrs import services
from okrs.models import CheckIn, KeyResult, Objective
from orgs.models import Cycle, Role

from ..conftest import client_for
from ..factories import (
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def url(world, name, *args):
    return reverse(name, args=[world.org.slug, *args])


def check_in(world, kr, value, confidence="on_track", *, days_ago=0, note=""):
    with scope(organization=world.org):
        return services.record_check_in(
            membership=world.admin, key_result=kr, value=Decimal(value), confidence=confidence,
            note=note, at=timezone.now() - timedelta(days=days_ago, minutes=1))


def fresh(model, pk):
    with scopes_disabled():
        return model.objects.get(pk=pk)


@pytest.fixture
def kr(world_a):
    return KeyResultFactory(objective=world_a.objective, start_value=Decimal("0"),
                            target_value=Decimal("10"), current_value=Decimal("0"), unit="deals")


# Check-ins -------------------------------------------------------------------------------------


def test_correcting_the_latest_check_in_keeps_the_old_one_as_corrected_and_moves_the_kr(
        world_a, kr):
    first = check_in(world_a, kr, "2", days_ago=7)
    wrong = check_in(world_a, kr, "59.3", "at_risk", note="typo")
    with scope(organization=world_a.org):
        new = services.correct_check_in(membership=world_a.admin, check_in=wrong, value="6",
                                        confidence="on_track", note="Six deals.",
                                        reason="Typed 59.3 for 6")
    wrong, kr = fresh(CheckIn, wrong.pk), fresh(KeyResult, kr.pk)
    # The mistaken report is still there, with its own values, marked corrected by whom and when.
    assert wrong.value == Decimal("59.3") and wrong.note == "typo"
    assert wrong.correction == "edited" and wrong.corrected_by == world_a.admin.user
    assert wrong.corrected_at is not None and wrong.correction_note == "Typed 59.3 for 6"
    # The correction reports on the same moment and replaces it.
    assert new.corrects_id == wrong.pk and new.created_at == wrong.created_at
    assert (kr.current_value, kr.confidence) == (Decimal("6"), "on_track")
    assert kr.last_check_in_at == wrong.created_at
    with scopes_disabled():
        assert CheckIn.objects.filter(key_result=kr).count() == 3
        assert list(CheckIn.objects.filter(key_result=kr).live()) == [new, first]


def test_deleting_the_latest_check_in_falls_back_to_the_one_before(world_a, kr):
    first = check_in(world_a, kr, "2", "at_risk", days_ago=7)
    wrong = check_in(world_a, kr, "9")
    with scope(organization=world_a.org):
        services.delete_check_in(membership=world_a.admin, check_in=wrong,
                                 reason="Checked in on the wrong KR")
    wrong, kr = fresh(CheckIn, wrong.pk), fresh(KeyResult, kr.pk)
    assert wrong.correction == "deleted" and wrong.value == Decimal("9")
    assert (kr.current_value, kr.confidence) == (Decimal("2"), "at_risk")
    assert kr.last_check_in_at == first.created_at


def test_deleting_the_only_check_in_returns_the_kr_to_its_start(world_a, kr):
    wrong = check_in(world_a, kr, "9")
    with scope(organization=world_a.org):
        services.delete_check_in(membership=world_a.admin, check_in=wrong)
    kr = fresh(KeyResult, kr.pk)
    assert (kr.current_value, kr.confidence, kr.last_check_in_at) == (Decimal("0"), "", None)


def test_correcting_an_older_check_in_leaves_the_current_value(world_a, kr):
    old = check_in(world_a, kr, "20", days_ago=7)
    check_in(world_a, kr, "4")
    with scope(organization=world_a.org):
        services.correct_check_in(membership=world_a.admin, check_in=old, value="2",
                                  confidence="on_track")
    assert fresh(KeyResult, kr.pk).current_value == Decimal("4")


def test_a_corrected_check_in_cannot_be_corrected_again(world_a, kr):
    wrong = check_in(world_a, kr, "9")
    with scope(organization=world_a.org):
        services.delete_check_in(membership=world_a.admin, check_in=wrong)
        with pytest.raises(ValidationError, match="already"):
            services.correct_check_in(membership=world_a.admin, check_in=wrong, value="1",
                                      confidence="on_track")
        with pytest.raises(ValidationError, match="already"):
            services.delete_check_in(membership=world_a.admin, check_in=wrong)


def test_a_correction_is_validated_like_a_check_in(world_a, kr):
    wrong = check_in(world_a, kr, "9")
    with scope(organization=world_a.org), pytest.raises(ValidationError) as e:
        services.correct_check_in(membership=world_a.admin, check_in=wrong, value=None,
                                  confidence="on_track")
    assert "value" in e.value.error_dict
    assert fresh(CheckIn, wrong.pk).corrected_at is None


def test_only_those_who_may_check_in_correct_and_never_in_a_closed_cycle(world_a, kr):
    wrong = check_in(world_a, kr, "9")
    with scope(organization=world_a.org):
        with pytest.raises(PermissionDenied):
            services.delete_check_in(membership=world_a.bob, check_in=wrong)
        Cycle.objects.filter(pk=world_a.cycle.pk).update(status=Cycle.Status.CLOSED)
        wrong = CheckIn.objects.select_related("key_result__objective__cycle").get(pk=wrong.pk)
        with pytest.raises(ValidationError, match="closed"):
            services.correct_check_in(membership=world_a.admin, check_in=wrong, value="1",
                                      confidence="on_track")
    assert fresh(CheckIn, wrong.pk).corrected_at is None


def test_the_objective_page_shows_a_correction_with_who_and_when(world_a, alice_client, kr):
    check_in(world_a, kr, "2", days_ago=7)
    wrong = check_in(world_a, kr, "59.3")
    response = alice_client.post(url(world_a, "check_in_correct", wrong.pk), {
        "value": "6", "confidence": "on_track", "note": "Six deals.", "reason": "Typo"})
    assert response.status_code == 302
    html = alice_client.get(url(world_a, "objective", world_a.objective.pk)).content.decode()
    assert "Corrected by Alice Admin" in html and "Typo" in html
    assert "59.3" in html  # the mistaken value stays readable in the history
    assert '<span data-testid="kr-current">6</span>' in html
    assert url(world_a, "check_in_correct", wrong.pk) not in html  # done: no second correction


def test_deleting_a_check_in_through_the_page(world_a, alice_client, kr):
    wrong = check_in(world_a, kr, "9")
    page = alice_client.get(url(world_a, "check_in_correct", wrong.pk)).content.decode()
    assert "Delete this check-in" in page
    assert alice_client.get(url(world_a, "check_in_delete", wrong.pk)).status_code == 302
    assert fresh(CheckIn, wrong.pk).corrected_at is None  # a GET changes nothing
    # Without confirm=yes (no JavaScript): a page asks first, and nothing is deleted yet.
    response = alice_client.post(url(world_a, "check_in_delete", wrong.pk), {"reason": "Oops"})
    assert response.status_code == 302 and "reason=Oops" in response.url
    asked = alice_client.get(response.url).content.decode()
    assert "Delete this check-in?" in asked and 'name="confirm" value="yes"' in asked
    assert 'value="Oops"' in asked  # the reason goes along
    assert fresh(CheckIn, wrong.pk).corrected_at is None
    response = alice_client.post(url(world_a, "check_in_delete", wrong.pk),
                                 {"reason": "Oops", "confirm": "yes"})
    assert response.status_code == 302
    html = alice_client.get(url(world_a, "objective", world_a.objective.pk)).content.decode()
    assert "Deleted by Alice Admin" in html


def test_a_viewer_cannot_open_the_correction_page(world_a, kr):
    wrong = check_in(world_a, kr, "9")
    viewer = client_for(world_a.bob.user)
    assert viewer.get(url(world_a, "check_in_correct", wrong.pk)).status_code == 403
    assert viewer.post(url(world_a, "check_in_delete", wrong.pk),
                       {"confirm": "yes"}).status_code == 403


# Key results -----------------------------------------------------------------------------------


def test_a_key_result_without_check_ins_is_deleted(world_a, alice_client, kr):
    # Without confirm=yes (no JavaScript): a page asks first, and nothing is deleted yet.
    response = alice_client.post(url(world_a, "key_result_delete", kr.pk))
    asked = alice_client.get(response.url).content.decode()
    assert f"Delete the key result “{kr.title}”?" in asked
    with scopes_disabled():
        assert KeyResult.objects.filter(pk=kr.pk).exists()
    response = alice_client.post(url(world_a, "key_result_delete", kr.pk), {"confirm": "yes"})
    assert response.status_code == 302
    with scopes_disabled():
        assert not KeyResult.objects.filter(pk=kr.pk).exists()


def test_a_key_result_with_check_ins_is_not_deleted_and_says_why(world_a, alice_client, kr):
    check_in(world_a, kr, "3")
    with scope(organization=world_a.org), pytest.raises(ValidationError,
                                                        match="1 check-in"):
        services.delete_key_result(membership=world_a.admin, key_result=kr)
    response = alice_client.post(url(world_a, "key_result_delete", kr.pk), {"confirm": "yes"},
                                 follow=True)
    assert "1 check-in" in response.content.decode()
    with scopes_disabled():
        assert KeyResult.objects.filter(pk=kr.pk).exists()


def test_a_key_result_in_a_dependency_is_not_deleted(world_a):
    # world_a.key_result depends on another objective; it has a check-in too, so use a new one.
    with scopes_disabled():
        from dependencies.models import Dependency
        Dependency.objects.filter(pk=world_a.dependency.pk).update(
            downstream_key_result=KeyResultFactory(objective=world_a.objective))
        kr = Dependency.objects.get(pk=world_a.dependency.pk).downstream_key_result
    with scope(organization=world_a.org), pytest.raises(ValidationError, match="dependenc"):
        services.delete_key_result(membership=world_a.admin, key_result=kr)


def test_only_the_objectives_editors_delete_a_key_result(world_a, kr):
    with scope(organization=world_a.org), pytest.raises(PermissionDenied):
        services.delete_key_result(membership=world_a.bob, key_result=kr)
    assert client_for(world_a.bob.user).post(
        url(world_a, "key_result_delete", kr.pk), {"confirm": "yes"}).status_code == 403


# Un-retire -------------------------------------------------------------------------------------


def test_unretiring_brings_an_objective_back_as_it_was(world_a, alice_client):
    with scopes_disabled():
        Objective.objects.filter(pk=world_a.objective.pk).update(state="published")
    objective = fresh(Objective, world_a.objective.pk)
    with scope(organization=world_a.org):
        services.retire_objective(membership=world_a.admin, objective=objective)
    assert fresh(Objective, objective.pk).is_retired
    html = alice_client.get(url(world_a, "objective", objective.pk)).content.decode()
    assert "Bring it back" in html
    response = alice_client.post(url(world_a, "objective_unretire", objective.pk))
    assert response.status_code == 302
    assert fresh(Objective, objective.pk).state == "published"


def test_unretiring_under_a_retired_parent_is_refused(world_a):
    with scope(organization=world_a.org):
        services.retire_objective(membership=world_a.admin, objective=world_a.company_objective)
        services.retire_objective(membership=world_a.admin,
                                  objective=fresh(Objective, world_a.objective.pk))
        with pytest.raises(ValidationError, match="retired"):
            services.unretire_objective(membership=world_a.admin,
                                        objective=fresh(Objective, world_a.objective.pk))
    assert fresh(Objective, world_a.objective.pk).is_retired


def test_unretiring_closes_the_flags_its_retirement_raised(world_a):
    child = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle,
                             team=world_a.team, parent=world_a.objective, state="published")
    with scopes_disabled():
        Objective.objects.filter(pk=world_a.objective.pk).update(state="published")
    with scope(organization=world_a.org):
        services.retire_objective(membership=world_a.admin,
                                  objective=fresh(Objective, world_a.objective.pk))
        assert RecascadeFlag.objects.filter(objective=child, resolution="open").exists()
        services.unretire_objective(membership=world_a.admin,
                                    objective=fresh(Objective, world_a.objective.pk))
        assert not RecascadeFlag.objects.filter(objective=child, resolution="open").exists()


def test_only_the_teams_leads_unretire(world_a):
    lead = MembershipFactory(organization=world_a.org, user=UserFactory(),
                             role=Role.TEAM_LEAD)
    with scope(organization=world_a.org):
        services.retire_objective(membership=world_a.admin,
                                  objective=fresh(Objective, world_a.objective.pk))
        with pytest.raises(PermissionDenied):
            services.unretire_objective(membership=lead,
                                        objective=fresh(Objective, world_a.objective.pk))
    assert client_for(world_a.bob.user).post(
        url(world_a, "objective_unretire", world_a.objective.pk)).status_code == 403


@pytest.mark.parametrize("field, value", [
    ("confidence", "bogus"), ("confidence", None), ("value", Decimal("NaN")),
    ("value", Decimal("1e12")), ("value", "forty"), ("note", "Done\x07"), ("note", "x" * 2001),
    ("reason", "Typo\x07"), ("reason", "x" * 301), ("reason", "two\nlines"),
])
def test_a_correction_refuses_bad_input_and_changes_nothing(world_a, kr, field, value):
    wrong = check_in(world_a, kr, "9")
    args = dict(membership=world_a.admin, check_in=wrong, value="6", confidence="on_track",
                note="", reason="")
    with scope(organization=world_a.org), pytest.raises(ValidationError) as e:
        services.correct_check_in(**(args | {field: value}))
    assert field in e.value.error_dict
    assert fresh(CheckIn, wrong.pk).corrected_at is None
    assert fresh(KeyResult, kr.pk).current_value == Decimal("9")
    if field == "reason":
        with scope(organization=world_a.org), pytest.raises(ValidationError):
            services.delete_check_in(membership=world_a.admin, check_in=wrong, reason=value)
        assert fresh(CheckIn, wrong.pk).corrected_at is None


def test_the_team_page_lists_its_retired_objectives_to_bring_them_back(world_a, alice_client):
    with scope(organization=world_a.org):
        services.retire_objective(membership=world_a.admin,
                                  objective=fresh(Objective, world_a.objective.pk))
    html = alice_client.get(url(world_a, "team", world_a.team.pk)).content.decode()
    assert "Retired in" in html
    assert f'href="{url(world_a, "objective", world_a.objective.pk)}"' in html
