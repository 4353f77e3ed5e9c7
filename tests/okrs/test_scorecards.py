"""Scorecards that are alive: KPIs with bands, values over time, a health, the lead told when
one leaves its healthy band, and a recovery objective drafted for it in one click."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dependencies.models import Notification
from nudges.models import BundleItem
from okrs import kpis, scorecards
from okrs.models import KPI, CheckIn, KPIValue, Objective
from orgs.models import Cycle, Role, Team

from ..conftest import client_for
from ..factories import KPIFactory, MembershipFactory, ObjectiveFactory, TeamFactory, UserFactory
from ..querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.mark.parametrize("value, direction, healthy, warning, health", [
    (D("99.5"), "higher", D("99"), D("95"), "healthy"),
    (D("99"), "higher", D("99"), D("95"), "healthy"),  # the threshold is in the better band
    (D("97"), "higher", D("99"), D("95"), "warning"),
    (D("95"), "higher", D("99"), D("95"), "warning"),
    (D("94.9"), "higher", D("99"), D("95"), "unhealthy"),
    (D("0.8"), "lower", D("1"), D("1.5"), "healthy"),
    (D("1.2"), "lower", D("1"), D("1.5"), "warning"),
    (D("2"), "lower", D("1"), D("1.5"), "unhealthy"),
    (D("98"), "higher", D("99"), D("99"), "unhealthy"),  # no warning band
    (None, "higher", D("99"), D("95"), ""),
    (D("5"), "higher", None, None, ""),
])
def test_health_reads_the_value_against_the_bands(value, direction, healthy, warning, health):
    assert kpis.health_of(value, direction=direction, healthy_at=healthy,
                          warning_at=warning) == health


@pytest.mark.parametrize("before, after, worse", [
    ("healthy", "warning", True), ("warning", "unhealthy", True), ("", "unhealthy", True),
    ("healthy", "unhealthy", True), ("unhealthy", "warning", False),
    ("warning", "warning", False), ("unhealthy", "healthy", False), ("", "healthy", False),
])
def test_only_a_worse_health_counts_as_leaving_the_band(before, after, worse):
    assert kpis.left_healthy_band(before, after) is worse


@pytest.fixture
def kept(world_a):
    """Lee leads world_a.team (a department) and has a KPI on it: uptime, healthy from 99%."""
    w = world_a
    w.lee = UserFactory(email="lee@a.test", full_name="Lee Lead")
    w.lead = MembershipFactory(organization=w.org, user=w.lee, role=Role.TEAM_LEAD)
    with scopes_disabled():
        Team.objects.filter(pk=w.team.pk).update(lead=w.lee)
        w.team.refresh_from_db()
        w.kpi = KPI.objects.get(pk=w.kpi.pk)
    w.lee_client = client_for(w.lee)
    return w


def test_a_value_out_of_the_band_makes_the_kpi_unhealthy_and_tells_the_lead(kept):
    w = kept
    sam = UserFactory(email="sam@a.test")
    member = MembershipFactory(organization=w.org, user=sam, role=Role.MEMBER)
    member.teams.add(w.team)
    with scope(organization=w.org):
        scorecards.record_kpi_value(membership=member, kpi=w.kpi, value="99.5")
        w.kpi.refresh_from_db()
        assert w.kpi.health == "healthy" and not Notification.objects.filter(kind="kpi").exists()
        scorecards.record_kpi_value(membership=member, kpi=w.kpi, value="90")
        w.kpi.refresh_from_db()
        assert (w.kpi.health, w.kpi.current_value) == ("unhealthy", D("90"))
        told = Notification.objects.get(kind="kpi")
        assert told.user == w.lee and told.objective is None
        assert "is unhealthy" in told.title and told.url.endswith(f"/teams/{w.team.pk}/#scorecard")
        assert BundleItem.objects.filter(kind="kpi_left_band").exists()  # the email, bundled
        # Still unhealthy: nobody is told twice.
        scorecards.record_kpi_value(membership=member, kpi=w.kpi, value="89")
        assert Notification.objects.filter(kind="kpi").count() == 1
    alerts = w.lee_client.get(f"/o/{w.org.slug}/alerts/").content.decode()
    assert "uptime is unhealthy" in alerts


def test_an_older_value_joins_the_history_without_replacing_the_current_one(kept):
    w = kept
    with scope(organization=w.org):
        scorecards.record_kpi_value(membership=w.lead, kpi=w.kpi, value="99.5")
        scorecards.record_kpi_value(membership=w.lead, kpi=w.kpi, value="80",
                                    at=timezone.now() - timedelta(days=3))
        w.kpi.refresh_from_db()
        assert (w.kpi.current_value, w.kpi.health) == (D("99.5"), "healthy")
        assert KPIValue.objects.filter(kpi=w.kpi).count() == 2


def test_values_no_person_typed_come_through_the_source_seam(kept):
    w = kept
    with scope(organization=w.org):
        row = scorecards.record_source_kpi_value(kpi=w.kpi, source=CheckIn.Source.DATA_SOURCE,
                                                 value=D("94"))
        assert row.author is None and row.source == "data_source"
        assert Notification.objects.get(kind="kpi").user == w.lee  # no actor: the lead hears
        with pytest.raises(ValidationError):
            scorecards.record_source_kpi_value(kpi=w.kpi, source=CheckIn.Source.PERSON, value=1)
        with pytest.raises(ValidationError):
            scorecards.record_source_kpi_value(kpi=w.kpi, source="api", value="not a number")


def test_only_the_team_and_its_leads_record_values(kept, bob):
    w = kept
    outsider = MembershipFactory(organization=w.org, user=UserFactory(email="o@a.test"),
                                 role=Role.MEMBER)
    with scope(organization=w.org):
        for who in (outsider, w.bob):
            with pytest.raises(PermissionDenied):
                scorecards.record_kpi_value(membership=who, kpi=w.kpi, value=1)
    response = client_for(bob).post(f"/o/{w.org.slug}/kpis/{w.kpi.pk}/values/", {"value": "1"})
    assert response.status_code == 403
    with scopes_disabled():
        assert not KPIValue.objects.exists()


def test_a_band_edit_reads_the_health_again(kept):
    w = kept
    with scope(organization=w.org):
        scorecards.record_kpi_value(membership=w.lead, kpi=w.kpi, value="97")
    w.kpi.refresh_from_db()
    assert w.kpi.health == "warning"
    url = f"/o/{w.org.slug}/teams/{w.team.pk}/edit/kpis/{w.kpi.pk}/"
    response = w.lee_client.post(url, {"name": "Uptime", "unit": "%", "direction": "higher",
                                       "healthy_at": "96", "warning_at": "90"})
    assert response.status_code == 302
    w.kpi.refresh_from_db()
    assert (w.kpi.name, w.kpi.health) == ("Uptime", "healthy")


@pytest.mark.parametrize("data, error", [
    ({"healthy_at": "90", "warning_at": "95"}, "at or below the healthy threshold"),
    ({"direction": "lower", "healthy_at": "2", "warning_at": "1"},
     "at or above the healthy threshold"),
    ({"healthy_at": "90", "warning_at": ""}, "Give both bands, or neither."),
    ({"name": ""}, "This field is required."),
])
def test_bad_kpi_input_is_a_form_error_and_nothing_is_saved(kept, data, error):
    w = kept
    form = {"action": "kpi", "kpi-name": "Lead time", "kpi-unit": "days",
            "kpi-direction": "higher", "kpi-healthy_at": "", "kpi-warning_at": ""}
    form |= {f"kpi-{k}": v for k, v in data.items()}
    response = w.lee_client.post(f"/o/{w.org.slug}/teams/{w.team.pk}/edit/", form)
    assert response.status_code == 200 and error in response.content.decode()
    assert 'value="days"' in response.content.decode()  # what was typed stays
    with scopes_disabled():
        assert KPI.objects.filter(team=w.team).count() == 1


def test_the_scorecard_stays_short(kept):
    w = kept
    for i in range(KPI.MAX_PER_TEAM - 1):
        KPIFactory(team=w.team, name=f"K{i}")
    with scope(organization=w.org), pytest.raises(ValidationError, match="at most 8"):
        scorecards.save_kpi(membership=w.lead, team=w.team, name="One too many")


def test_the_team_page_shows_health_sparkline_and_the_recovery_offer(kept):
    w = kept
    with scope(organization=w.org):
        for v in ("99.5", "98", "90"):
            scorecards.record_kpi_value(membership=w.lead, kpi=w.kpi, value=v)
    html = w.lee_client.get(f"/o/{w.org.slug}/teams/{w.team.pk}/").content.decode()
    assert "Org A uptime" in html and "Unhealthy" in html and "<polyline" in html
    assert "Healthy at 99% or more; warning from 95%; unhealthy below." in html
    assert 'data-testid="offer-recovery"' in html
    # A viewer sees the scorecard, with no form and no offer.
    bob_html = client_for(w.bob.user).get(f"/o/{w.org.slug}/teams/{w.team.pk}/").content.decode()
    assert "Unhealthy" in bob_html and 'data-testid="offer-recovery"' not in bob_html
    assert 'name="value"' not in bob_html


def test_the_recovery_objective_is_drafted_in_the_current_cycle_with_the_suggested_parent(kept):
    w = kept
    with scope(organization=w.org):
        scorecards.record_kpi_value(membership=w.lead, kpi=w.kpi, value="90")
    url = f"/o/{w.org.slug}/kpis/{w.kpi.pk}/recovery/"
    offer = w.lee_client.get(url).content.decode()
    # The team's objective serves the company goal: that is the suggestion.
    assert "Org A company goal" in offer and "Bring Org A uptime back to healthy" in offer
    response = w.lee_client.post(url, {"title": "Bring Org A uptime back to healthy",
                                       "why": "It fell to 90%.", "align": "yes"})
    assert response.status_code == 302
    with scopes_disabled():
        objective = Objective.objects.get(recovery_kpi=w.kpi)
    assert (objective.team_id, objective.cycle_id, objective.parent_id, objective.state) == (
        w.team.pk, w.cycle.pk, w.company_objective.pk, "draft")
    assert response["Location"] == f"/o/{w.org.slug}/objectives/{objective.pk}/"
    # Offered once: the page now links to it, and the service refuses a second one.
    html = w.lee_client.get(f"/o/{w.org.slug}/teams/{w.team.pk}/").content.decode()
    assert "Recovering:" in html and 'data-testid="offer-recovery"' not in html
    with scope(organization=w.org), pytest.raises(ValidationError, match="already has"):
        scorecards.draft_recovery_objective(membership=w.lead, kpi=w.kpi, title="Again")


def test_no_recovery_objective_for_a_healthy_kpi_a_closed_cycle_or_a_stranger(kept):
    w = kept
    with scope(organization=w.org):
        with pytest.raises(ValidationError, match="healthy band"):
            scorecards.draft_recovery_objective(membership=w.lead, kpi=w.kpi, title="x")
        scorecards.record_kpi_value(membership=w.lead, kpi=w.kpi, value="90")
        w.kpi.refresh_from_db()
        with pytest.raises(PermissionDenied):
            scorecards.draft_recovery_objective(membership=w.bob, kpi=w.kpi, title="x")
        Cycle.objects.filter(pk=w.cycle.pk).update(status="closed")
        with pytest.raises(ValidationError, match="No cycle is open"):
            scorecards.draft_recovery_objective(membership=w.lead, kpi=w.kpi, title="x")
        assert not Objective.objects.filter(recovery_kpi=w.kpi).exists()


def test_the_suggested_parent_is_what_the_teams_objectives_serve_most(world_a):
    w = world_a
    other = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.company, title="Other")
    for title in ("A", "B"):
        ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team, parent=other,
                         title=title)
    lonely = TeamFactory(organization=w.org, name="Lonely", parent=w.team)
    lonely_kpi = KPIFactory(team=lonely, name="Latency")
    with scope(organization=w.org):
        assert scorecards.suggest_parent_for_recovery(w.kpi, w.cycle)[0] == other
        # A team with no objectives: what its parent unit's objectives serve.
        parent, why = scorecards.suggest_parent_for_recovery(lonely_kpi, w.cycle)
        assert parent == other and "Org A Engineering" in why


def test_the_report_shows_unhealthy_kpis_no_objective_addresses(kept, alice_client):
    w = kept
    with scope(organization=w.org):
        scorecards.record_kpi_value(membership=w.lead, kpi=w.kpi, value="90")
    report = alice_client.get(f"/o/{w.org.slug}/alignment/report/").content.decode()
    assert "Unhealthy KPIs with no recovery objective" in report
    assert "Org A uptime is 90%, unhealthy" in report
    with scope(organization=w.org):
        w.kpi.refresh_from_db()
        scorecards.draft_recovery_objective(membership=w.lead, kpi=w.kpi, title="Recover")
    report = alice_client.get(f"/o/{w.org.slug}/alignment/report/").content.decode()
    assert "Org A uptime is 90%" not in report


def test_the_team_page_keeps_its_queries_as_kpis_and_values_grow(kept):
    w = kept

    def grow(n_kpis, n_values):
        with scope(organization=w.org):
            for _ in range(n_kpis):
                k = KPIFactory(team=w.team, name=f"K{KPI.objects.count()}")
                KPIValue.objects.bulk_create([KPIValue(
                    organization=w.org, kpi=k, value=j, at=timezone.now() - timedelta(days=j))
                    for j in range(n_values)])

    url = f"/o/{w.org.slug}/teams/{w.team.pk}/"
    grow(1, 2)
    small = count_queries(lambda: w.lee_client.get(url))
    grow(5, 60)
    large = count_queries(lambda: w.lee_client.get(url))
    assert_same_queries(small, large)


def test_old_scorecard_lines_become_kpis(world_a):
    migration = __import__("okrs.migrations.0018_kpis_and_recovery_objectives",
                           fromlist=["scorecard_lines_to_kpis"])
    w = world_a
    with scopes_disabled():
        KPI.objects.all().delete()
        Team.objects.filter(pk=w.team.pk).update(scorecard=[
            {"name": "Uptime", "target": "99.9%"}, {"name": "p95 latency", "target": "< 300 ms"},
            {"name": "Happy customers", "target": "lots"}])
        migration.scorecard_lines_to_kpis(apps, None)
        rows = list(KPI.objects.filter(team=w.team).order_by("position").values_list(
            "name", "unit", "direction", "healthy_at", "warning_at"))
    assert rows == [("Uptime", "%", "higher", D("99.9"), D("99.9")),
                    ("p95 latency", "ms", "lower", D("300"), D("300")),
                    ("Happy customers", "", "higher", None, None)]


def test_the_recovery_offer_and_the_kpi_form_keep_their_queries_as_the_cycle_grows(kept):
    w = kept
    with scope(organization=w.org):
        scorecards.record_kpi_value(membership=w.lead, kpi=w.kpi, value="90")
    pages = [f"/o/{w.org.slug}/kpis/{w.kpi.pk}/recovery/",
             f"/o/{w.org.slug}/teams/{w.team.pk}/edit/kpis/{w.kpi.pk}/",
             f"/o/{w.org.slug}/teams/{w.team.pk}/edit/new/"]

    def grow(n):
        for i in range(n):
            ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team,
                             parent=w.company_objective, title=f"Grow {n} {i}")
            TeamFactory(organization=w.org, name=f"Team {n} {i}", parent=w.team)

    grow(1)
    small = [count_queries(lambda u=u: w.lee_client.get(u)) for u in pages]
    grow(15)
    large = [count_queries(lambda u=u: w.lee_client.get(u)) for u in pages]
    for s, lg in zip(small, large, strict=True):
        assert s[0].status_code == lg[0].status_code == 200
        assert_same_queries(s, lg)
