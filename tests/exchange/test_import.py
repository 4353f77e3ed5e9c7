"""Importing a cycle's OKRs from CSV: dry run, errors by row and column, all or nothing,
idempotent, and the round trip export -> import into an empty cycle -> export."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from exchange import export, importer
from exchange.export import OKR_COLUMNS, READ_ONLY_COLUMNS
from okrs.models import CheckIn, KeyResult, Objective
from orgs.models import Cycle, Role, Team
from tests.factories import (
    CycleFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)


def to_csv(rows, header=OKR_COLUMNS):
    return "".join(export.csv_lines(header, rows)).encode()


def exported(world, cycle):
    with scope(organization=world.org):
        return list(export.okr_rows(world.org, cycle))


def comparable(rows):
    """The rows without what the import does not carry (state, progress, health, score)."""
    keep = [i for i, c in enumerate(OKR_COLUMNS) if c not in READ_ONLY_COLUMNS]
    return sorted(tuple(str(export.safe(r[i])) for i in keep) for r in rows)


def run(world, cycle, data, *, apply, membership=None):
    with scope(organization=world.org):
        return importer.run(membership=membership or world.admin, cycle=cycle, data=data,
                            apply=apply)


def counts(world):
    with scopes_disabled():
        return (Objective.objects.filter(organization=world.org).count(),
                KeyResult.objects.filter(organization=world.org).count(),
                CheckIn.objects.filter(organization=world.org).count())


@pytest.fixture
def rich(world_a):
    """World A with a richer cycle: a local objective, an owner, a milestone done, a value
    checked in, an aspirational objective without key results, a formula-like title."""
    with scopes_disabled():
        owner = UserFactory(email="dana@a.test", full_name="Dana")
        MembershipFactory(organization=world_a.org, user=owner, role=Role.MEMBER)
        squad = TeamFactory(organization=world_a.org, name="Squad", parent=world_a.team)
        local = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=squad,
                                 title="+Tidy the backlog", is_local=True,
                                 why="It slows every sprint.")
        KeyResultFactory(objective=local, title="Open bugs", start_value=Decimal("120"),
                         target_value=Decimal("40"), current_value=Decimal("90"),
                         unit="bugs", owner=owner, confidence="at_risk",
                         weight=Decimal("2"))
        KeyResultFactory(objective=local, title="Triage rota", kind="milestone",
                         start_value=None, target_value=None, current_value=None,
                         is_done=True, confidence="on_track")
        KeyResultFactory(objective=local, title="Uptime", kind="keep_above",
                         start_value=None, target_value=Decimal("99.5"),
                         current_value=Decimal("99.9"), unit="%", confidence="on_track")
        ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=squad,
                         parent=world_a.objective, title="Reach the moon",
                         commitment="aspirational")
    return world_a


@pytest.mark.django_db
def test_export_then_import_into_an_empty_cycle_gives_the_same_okrs(rich):
    before = exported(rich, rich.cycle)
    with scopes_disabled():
        empty = CycleFactory(organization=rich.org, name="Next quarter")
    report = run(rich, empty, to_csv(before), apply=True)
    assert report.errors == [] and report.applied
    after = exported(rich, empty)
    assert comparable(after) == comparable(before)
    with scopes_disabled():
        new = Objective.objects.filter(cycle=empty)
        assert {o.state for o in new} == {"draft"}  # as a lead's new objective
        imported = CheckIn.objects.filter(key_result__objective__cycle=empty)
        assert {c.source for c in imported} == {"import"}
        assert imported.count() == 3  # open bugs 90, uptime 99.9, the milestone done


@pytest.mark.django_db
def test_a_cycle_being_planned_takes_the_okrs_but_not_their_current_values(rich):
    from datetime import timedelta

    data = to_csv(exported(rich, rich.cycle))
    with scopes_disabled():
        start = rich.cycle.end_date + timedelta(days=1)
        planned = CycleFactory(organization=rich.org, name="Next quarter", start_date=start,
                               status=Cycle.Status.PLANNING)
    report = run(rich, planned, data, apply=True)
    assert report.errors == [] and report.applied
    assert report.count("Check in") == 0 and "has not started" in report.notes[0]
    with scopes_disabled():
        assert not CheckIn.objects.filter(key_result__objective__cycle=planned).exists()
        bugs = KeyResult.objects.get(objective__cycle=planned, title="Open bugs")
        assert bugs.current_value == bugs.start_value == 120


@pytest.mark.django_db
def test_a_thematic_organizations_themes_go_round_too(world_a):
    from orgs.models import Organization, Theme

    with scopes_disabled():
        Organization.objects.filter(pk=world_a.org.pk).update(alignment_model="thematic")
        world_a.org.refresh_from_db()
        growth = Theme.objects.create(organization=world_a.org, name="Growth")
        ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=world_a.team,
                         theme=growth, title="Grow by theme")
        empty = CycleFactory(organization=world_a.org, name="Next quarter")
    world_a.admin.organization = world_a.org
    before = exported(world_a, world_a.cycle)
    assert any(r[OKR_COLUMNS.index("Theme")] == "Growth" for r in before)
    report = run(world_a, empty, to_csv(before), apply=True)
    assert report.errors == []
    assert comparable(exported(world_a, empty)) == comparable(before)
    rows = [["Org A Engineering", "Lost theme", "", "", "Nope"]]
    report = run(world_a, empty, to_csv(rows, ["Team", "Objective", "Parent team",
                                              "Parent objective", "Theme"]), apply=False)
    assert [(line, c) for line, c, _ in report.errors] == [(2, "Theme")]


@pytest.mark.django_db
def test_importing_the_same_file_again_changes_nothing(rich):
    data = to_csv(exported(rich, rich.cycle))
    with scopes_disabled():
        empty = CycleFactory(organization=rich.org, name="Next quarter")
    run(rich, empty, data, apply=True)
    before = counts(rich)
    report = run(rich, empty, data, apply=True)
    assert report.errors == [] and report.actions == []
    assert counts(rich) == before
    # The cycle exported is itself unchanged by its own file.
    assert run(rich, rich.cycle, data, apply=False).actions == []


@pytest.mark.django_db
def test_the_dry_run_lists_what_it_would_do_and_writes_nothing(rich):
    data = to_csv(exported(rich, rich.cycle))
    with scopes_disabled():
        empty = CycleFactory(organization=rich.org, name="Next quarter")
    before = counts(rich)
    report = run(rich, empty, data, apply=False)
    assert not report.applied and report.errors == []
    assert report.count("Create the objective") == 5
    assert report.count("Create the key result") == 5
    assert report.count("Check in") == 3
    assert counts(rich) == before


@pytest.mark.django_db
def test_a_changed_row_updates_only_what_differs(rich):
    rows = exported(rich, rich.cycle)
    i = OKR_COLUMNS.index
    for r in rows:
        if r[i("Key result")] == "Open bugs":
            r[i("Target")], r[i("Current")], r[i("Confidence")] = "30", "80", "off_track"
    report = run(rich, rich.cycle, to_csv(rows), apply=True)
    assert report.errors == []
    assert [what for _, what in report.actions] == [
        "Update the key result “Open bugs”: target", "Check in on “Open bugs”: 80"]
    with scopes_disabled():
        kr = KeyResult.objects.get(organization=rich.org, title="Open bugs")
        assert (kr.target_value, kr.current_value, kr.confidence) == (30, 80, "off_track")
        check_in = kr.check_ins.first()
        assert check_in.source == "import" and check_in.author == rich.admin.user


HEADER = ["Team", "Objective", "Parent team", "Parent objective", "Key result", "Kind",
          "Owner", "Start", "Target", "Current", "Weight"]


@pytest.mark.django_db
def test_every_error_is_listed_by_row_and_column_and_nothing_is_written(world_a):
    rows = [
        ["Org A Engineering", "Good objective", "Org A", "Org A company goal", "KR one",
         "numeric", "", "0", "10", "", ""],                                          # row 2: ok
        ["No such team", "Lost", "", "", "", "", "", "", "", "", ""],                # 3
        ["Org A Engineering", "", "", "", "", "", "", "", "", "", ""],               # 4
        ["Org A Engineering", "Orphan", "Org A", "Not an objective", "", "", "", "", "", "",
         ""],                                                                        # 5
        ["Org A Engineering", "Good objective", "Org A", "Org A company goal", "KR two",
         "numeric", "", "zero", "10", "1,5", ""],                                    # 6
        ["Org A Engineering", "Good objective", "Org A", "Org A company goal", "KR one",
         "numeric", "", "0", "10", "", ""],                                          # 7
        ["Org A Engineering", "Good objective", "Org A", "Org A company goal", "KR three",
         "sideways", "", "", "", "", ""],                                            # 8
        ["Org A Engineering", "Good objective", "Org A", "Org A company goal", "KR four",
         "numeric", "nobody@a.test", "0", "5", "", ""],                              # 9
    ]
    before = counts(world_a)
    report = run(world_a, world_a.cycle, to_csv(rows, HEADER), apply=True)
    found = {(line, column) for line, column, _ in report.errors}
    assert found == {(3, "Team"), (4, "Objective"), (5, "Parent objective"), (6, "Start"),
                     (6, "Current"), (7, "Key result"), (8, "Kind"), (9, "Owner")}
    messages = {(line, column): m for line, column, m in report.errors}
    assert "No team is called “No such team”" in messages[(3, "Team")]
    assert "Row 2 already has this key result" in messages[(7, "Key result")]
    assert not report.applied and counts(world_a) == before


@pytest.mark.django_db
def test_a_row_the_services_refuse_rolls_back_the_whole_import(world_a):
    rows = [
        ["Org A Engineering", "Fine objective", "Org A", "Org A company goal", "Fine KR",
         "numeric", "", "0", "10", "", ""],
        # A numeric key result without a target: the service refuses it.
        ["Org A Engineering", "Fine objective", "Org A", "Org A company goal", "No target",
         "numeric", "", "0", "", "", ""],
    ]
    before = counts(world_a)
    report = run(world_a, world_a.cycle, to_csv(rows, HEADER), apply=True)
    assert [(line, column) for line, column, _ in report.errors] == [(3, "Target")]
    assert not report.applied and counts(world_a) == before


@pytest.mark.django_db
def test_parents_may_come_later_in_the_file_but_not_in_a_loop(world_a):
    later = [["Org A Engineering", "Child", "Org A Engineering", "Parent", "", "", "", "", "",
              "", ""],
             ["Org A Engineering", "Parent", "Org A", "Org A company goal", "", "", "", "", "",
              "", ""]]
    assert run(world_a, world_a.cycle, to_csv(later, HEADER), apply=True).applied
    loop = [["Org A Engineering", "Ying", "Org A Engineering", "Yang", "", "", "", "", "", "",
             ""],
            ["Org A Engineering", "Yang", "Org A Engineering", "Ying", "", "", "", "", "", "",
             ""]]
    report = run(world_a, world_a.cycle, to_csv(loop, HEADER), apply=True)
    assert {c for _, c, _ in report.errors} == {"Parent objective"} and not report.applied


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"Name,Title\nx,y\n", "“Team”, “Objective” is missing"),
    ("Team,Objective\n".encode("utf-16"), "not UTF-8"),
    (b"x" * (importer.MAX_BYTES + 1), "larger than 1 MB"),
])
def test_a_file_that_cannot_be_read_says_why(data, message):
    with pytest.raises(importer.FileError, match=message):
        importer.read_rows(data)


# The pages ------------------------------------------------------------------------------------


def import_url(world, cycle=None):
    return reverse("okr_import", args=[world.org.slug, (cycle or world.cycle).pk])


def upload(client, url, data, name="okrs.csv"):
    file = io.BytesIO(data)
    file.name = name
    return client.post(url, {"file": file})


@pytest.mark.django_db
def test_the_page_runs_a_dry_run_then_imports_on_confirmation(rich, alice_client):
    data = to_csv(exported(rich, rich.cycle))
    with scopes_disabled():
        empty = CycleFactory(organization=rich.org, name="Next quarter")
    url = import_url(rich, empty)
    assert alice_client.get(url).status_code == 200
    before = counts(rich)
    dry = upload(alice_client, url, data)
    assert dry.status_code == 200
    html = dry.content.decode()
    assert "Dry run: nothing is written yet" in html and "5 objectives to create" in html
    assert counts(rich) == before
    token = dry.context["token"]
    done = alice_client.post(url, {"token": token})
    assert done.status_code == 302
    assert counts(rich)[0] == before[0] + 5
    # The token was used up: posting it again asks for the file again.
    again = alice_client.post(url, {"token": token})
    assert again.status_code == 200 and "expired" in again.content.decode()


@pytest.mark.django_db
def test_the_page_shows_errors_by_row_and_column(world_a, alice_client):
    rows = [["Nowhere", "Lost", "", "", "", "", "", "", "", "", ""]]
    response = upload(alice_client, import_url(world_a), to_csv(rows, HEADER))
    assert response.status_code == 200
    html = response.content.decode()
    assert "The file has 1 error" in html and "No team is called “Nowhere”" in html
    assert 'name="token"' not in html


@pytest.mark.django_db
def test_only_alignment_leads_and_admins_import(world_a, bob_client):
    with scopes_disabled():
        lead = UserFactory()
        MembershipFactory(organization=world_a.org, user=lead, role=Role.TEAM_LEAD)
        Team.objects.filter(pk=world_a.team.pk).update(lead=lead)
    from tests.conftest import client_for

    for client in (bob_client, client_for(lead)):
        assert client.get(import_url(world_a)).status_code == 403
        assert upload(client, import_url(world_a), b"Team,Objective\n").status_code == 403


@pytest.mark.django_db
def test_a_closed_cycle_takes_no_import(world_a, alice_client):
    with scopes_disabled():
        Cycle.objects.filter(pk=world_a.cycle.pk).update(status=Cycle.Status.CLOSED)
    rows = [["Org A Engineering", "New", "Org A", "Org A company goal", "", "", "", "", "", "",
             ""]]
    before = counts(world_a)
    response = upload(alice_client, import_url(world_a), to_csv(rows, HEADER))
    assert "This cycle is closed" in response.content.decode()
    assert counts(world_a) == before


@pytest.mark.django_db
def test_the_template_has_the_export_columns(world_a, bob_client):
    response = bob_client.get(reverse("okr_import_template",
                                      args=[world_a.org.slug, world_a.cycle.pk]))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header, example = list(csv.reader(io.StringIO(text)))
    assert header == OKR_COLUMNS and len(example) <= len(header)


@pytest.mark.django_db
def test_the_import_page_reads_a_constant_number_of_queries(world_a, alice_client,
                                                            django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        assert alice_client.get(import_url(world_a)).status_code == 200
