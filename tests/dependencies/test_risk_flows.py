"""Progress flows up, risk flows down, and the impact of an at-risk objective, on the database:
computed by the propagation run, read by the pages, alerted once per person per run."""

from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from dependencies import network
from dependencies.models import Notification
from okrs.models import KeyResult, Objective
from orgs.models import Role, Team
from tests.conftest import client_for
from tests.factories import (
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)
from tests.querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def run(r, capture):
    with scope(organization=r.org), capture(execute=True):
        return network.run(r.cycle)


def fresh(obj):
    with scope(organization=obj.organization):
        return type(obj).objects.get(pk=obj.pk)


def set_sso(r, confidence):
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence=confidence)


@pytest.fixture
def teams(revenue):
    """Below Sales: a pipeline team led by Noah with two objectives, on track by themselves."""
    r = revenue
    with scopes_disabled():
        r.noah = UserFactory(email="noah@a.test", full_name="Noah Pipeline")
        r.pipeline = TeamFactory(organization=r.org, name="Pipeline", parent=r.sales,
                                 lead=r.noah)
        r.noah_m = MembershipFactory(organization=r.org, user=r.noah, role=Role.TEAM_LEAD,
                                     teams=[r.pipeline])
        r.zoe_m = MembershipFactory(organization=r.org, role=Role.MEMBER,
                                    teams=[r.pipeline, r.sales])
        r.leads = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.pipeline,
                                   parent=r.win, title="Qualify more leads")
        KeyResultFactory(objective=r.leads, title="Qualified leads", current_value=Decimal(60),
                         confidence="on_track")
        r.calls = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.pipeline,
                                   parent=r.win, title="Book more discovery calls")
        KeyResultFactory(objective=r.calls, title="Discovery calls", current_value=Decimal(60),
                         confidence="on_track")
    return r


def test_a_company_objective_takes_its_progress_from_its_aligned_objectives_by_weight(
        revenue, django_capture_on_commit_callbacks, alice_client):
    r = revenue
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.arr).rolled_progress is None  # own key results only: nothing rolled
    with scopes_disabled():
        Objective.objects.filter(pk=r.arr.pk).update(progress_mode="aligned")
        Objective.objects.filter(pk=r.win.pk).update(weight=3)
    run(r, django_capture_on_commit_callbacks)
    # Sales' objective is 60% done (weight 3), Engineering's 0% (weight 1); the company
    # objective has no key results of its own.
    assert fresh(r.arr).rolled_progress == pytest.approx(0.45)
    html = alice_client.get(reverse("home", args=[r.org.slug])).content.decode()
    assert 'value="45"' in html
    page = alice_client.get(reverse("objective", args=[r.org.slug, r.arr.pk])).content.decode()
    assert "Progress counts its key results and its aligned objectives" in page
    assert "Win enterprise customers" in page and "weight 3" in page


def test_risk_flows_down_to_every_objective_below_and_clears_when_it_recovers(
        teams, django_capture_on_commit_callbacks, alice_client):
    r = teams
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.leads).risk_above == {}
    set_sso(r, "off_track")
    run(r, django_capture_on_commit_callbacks)
    leads, calls, win, platform = fresh(r.leads), fresh(r.calls), fresh(r.win), fresh(r.platform)
    # Every objective below the company objective is flagged, with a link to it (Sales' own
    # objective is on track: its pipeline teams' work outweighs the deals KR at risk)...
    assert fresh(r.arr).effective_health == "at_risk" and win.effective_health == "on_track"
    assert {o.risk_above["id"] for o in (leads, calls, win, platform)} == {r.arr.pk}
    # ...and their own health does not change.
    assert leads.effective_health == "on_track" and not leads.risk_causes
    page = alice_client.get(reverse("objective", args=[r.org.slug, r.leads.pk])).content.decode()
    assert "The objective this contributes to is at risk" in page
    assert reverse("objective", args=[r.org.slug, r.arr.pk]) in page
    # Noah's home page marks his objectives too.
    home = client_for(r.noah).get(reverse("home", args=[r.org.slug])).content.decode()
    assert home.count("Contributes to an objective at risk") == 2
    set_sso(r, "on_track")
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.leads).risk_above == {} and fresh(r.win).risk_above == {}
    page = alice_client.get(reverse("objective", args=[r.org.slug, r.leads.pk])).content.decode()
    assert "The objective this contributes to is at risk" not in page


def test_owners_below_get_one_alert_bundled_per_person_with_the_reasons(
        teams, django_capture_on_commit_callbacks):
    r = teams
    run(r, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    set_sso(r, "off_track")
    run(r, django_capture_on_commit_callbacks)
    with scope(organization=r.org):
        notes = list(Notification.objects.filter(user=r.noah))
    [note] = notes  # one alert for both of Noah's objectives
    assert note.kind == "above" and note.objective_id == r.arr.pk
    assert [i["title"] for i in note.details["below"]] == [
        "Book more discovery calls", "Qualify more leads"]
    [email] = [m for m in mail.outbox if m.to == ["noah@a.test"]]
    assert "Reach $12M ARR" in email.body and "Qualify more leads" in email.body
    assert "Make the platform enterprise-ready" in email.body  # the reason it is at risk
    assert "Book more discovery calls" in email.alternatives[0].content
    # A rerun sends nothing again; Ethan, whose own objective is off track, hears of that only.
    mail.outbox.clear()
    run(r, django_capture_on_commit_callbacks)
    assert not mail.outbox
    with scope(organization=r.org):
        assert not Notification.objects.filter(user=r.ethan, kind="above").exists()


def test_an_at_risk_company_objective_shows_its_impact_and_alerts_its_owner_and_the_leads(
        teams, django_capture_on_commit_callbacks, alice_client):
    r = teams
    with scopes_disabled():
        Team.objects.filter(pk=r.world.company.pk).update(lead=UserFactory(
            email="ceo@a.test", full_name="Cleo CEO"))
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.arr).impact == {}
    mail.outbox.clear()
    set_sso(r, "off_track")
    run(r, django_capture_on_commit_callbacks)
    impact = fresh(r.arr).impact
    # Below it: Sales, Engineering, Pipeline; 4 objectives, 4 KRs, the SSO dependency; people:
    # Ethan, Mia, Noah and Zoe (on two teams, counted once).
    assert (impact["teams"], impact["objectives"], impact["key_results"],
            impact["dependencies"], impact["people"]) == (4, 4, 4, 1, 4)
    assert impact["causes"][0]["title"] == "Ship SSO"
    page = alice_client.get(reverse("objective", args=[r.org.slug, r.arr.pk])).content.decode()
    assert "Impact" in page and "4 people" in page and "Ship SSO" in page
    with scope(organization=r.org):
        told = set(Notification.objects.filter(objective=r.arr, kind__in=["worse", "impact"])
                   .values_list("user__email", "kind"))
    # Its owner hears it turned worse because of its teams' work, with its impact; the
    # alignment lead hears of its impact.
    assert told == {("ceo@a.test", "worse"), ("liam@a.test", "impact")}
    for who in ("liam@a.test", "ceo@a.test"):
        [email] = [m for m in mail.outbox if m.to == [who]]
        assert "Reach $12M ARR" in email.body and "4 people" in email.body
    set_sso(r, "on_track")
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.arr).impact == {}
    page = alice_client.get(reverse("objective", args=[r.org.slug, r.arr.pk])).content.decode()
    assert "data-testid=\"impact\"" not in page


def test_the_edit_form_sets_the_progress_mode_and_weights(revenue, alice_client):
    r = revenue
    url = reverse("objective_edit", args=[r.org.slug, r.win.pk])
    assert "Progress counts" in alice_client.get(url).content.decode()
    response = alice_client.post(url, {
        "title": r.win.title, "team": r.sales.pk, "parent": r.arr.pk, "state": "published",
        "version": r.win.version, "progress_mode": "aligned", "key_results_weight": "2",
        "weight": "3"})
    assert response.status_code == 302
    win = fresh(r.win)
    assert (win.progress_mode, win.key_results_weight, win.weight) == (
        "aligned", Decimal(2), Decimal(3))


def test_the_run_reads_and_writes_the_flows_in_a_fixed_number_of_queries(
        teams, django_capture_on_commit_callbacks):
    r = teams

    def slip_and_run():
        set_sso(r, "on_track")
        run(r, django_capture_on_commit_callbacks)
        set_sso(r, "off_track")
        with scope(organization=r.org), django_capture_on_commit_callbacks():
            return count_queries(lambda: network.run(r.cycle))

    small = slip_and_run()
    with scopes_disabled():
        for n in range(20):
            o = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.pipeline,
                                 parent=r.win, title=f"More {n}")
            KeyResultFactory(objective=o, current_value=Decimal(60), confidence="on_track")
    large = slip_and_run()
    assert_same_queries(small, large)
    assert fresh(r.arr).impact["objectives"] == 24


@pytest.mark.parametrize(("fields", "error"), [
    ({"progress_mode": "everything"}, "progress_mode"),
    ({"weight": Decimal(0)}, "weight"),
    ({"key_results_weight": Decimal("-1")}, "key_results_weight"),
    ({"weight": Decimal("1000")}, "weight"),
])
def test_the_service_refuses_a_progress_mode_or_weight_it_cannot_use(revenue, fields, error):
    from django.core.exceptions import ValidationError

    from okrs.services import update_objective

    r = revenue
    with scope(organization=r.org), pytest.raises(ValidationError) as refused:
        update_objective(membership=r.world.admin, objective=fresh(r.win),
                         version=r.win.version, title=r.win.title, why="", team=r.sales,
                         parent=r.arr, is_local=False, state="published", **fields)
    assert error in refused.value.message_dict
    assert fresh(r.win).weight == Decimal(1) and fresh(r.win).progress_mode == "key_results"
