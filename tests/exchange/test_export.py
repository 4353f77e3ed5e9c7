"""Downloads of a cycle: OKRs and check-ins (CSV, XLSX), the alignment matrix (CSV)."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from openpyxl import load_workbook

from exchange.cells import safe, unquote
from exchange.export import CHECK_IN_COLUMNS, OKR_COLUMNS
from okrs.models import CheckIn
from orgs.models import Team
from tests.factories import (
    CheckInFactory,
    KeyResultFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)
from tests.querycount import assert_same_queries, count_queries


def read_csv(response):
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def url(name, world):
    return reverse(name, args=[world.org.slug, world.cycle.pk])


@pytest.mark.parametrize("text, cell", [
    ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1", "'+1"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tTab", "'\tTab"), ("'quoted", "''quoted"),
    ("Plain", "Plain"), ("", ""),
])
def test_a_cell_a_spreadsheet_would_run_is_defused_and_reads_back(text, cell):
    assert safe(text) == cell
    assert unquote(safe(text)) == text.strip()


@pytest.mark.django_db
def test_the_okr_csv_has_a_row_per_key_result_and_per_objective_without_one(world_a, bob_client):
    with scopes_disabled():
        lonely = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle,
                                  team=world_a.team, parent=world_a.company_objective,
                                  title="=cmd|' /C calc'!A0")
        owner = UserFactory(email="dana@a.test")
        KeyResultFactory(objective=world_a.objective, title="Ship the API", owner=owner,
                         start_value=Decimal("10"), target_value=Decimal("250.5"),
                         current_value=Decimal("42"), unit="calls", confidence="at_risk")
    response = bob_client.get(url("export_okrs_csv", world_a))  # a viewer may download
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0] == OKR_COLUMNS
    by_kr = {r[OKR_COLUMNS.index("Key result")]: dict(zip(OKR_COLUMNS, r, strict=True))
             for r in rows[1:]}
    api = by_kr["Ship the API"]
    assert api["Team"] == "Org A Engineering" and api["Objective"] == "Org A team goal"
    assert api["Parent team"] == "Org A" and api["Parent objective"] == "Org A company goal"
    assert (api["Start"], api["Target"], api["Current"], api["Unit"]) == (
        "10", "250.5", "42", "calls")
    assert api["Owner"] == "dana@a.test" and api["Kind"] == "numeric"
    assert api["Confidence"] == "at_risk" and api["Progress"] == "13"
    assert api["Health"] in ("at_risk", "off_track")
    # The objective with no key result has its own row, its title defused.
    titles = [r[1] for r in rows[1:] if r[OKR_COLUMNS.index("Key result")] == ""]
    assert "'=cmd|' /C calc'!A0" in titles and lonely.title.startswith("=")
    # Retired objectives and other organizations stay out.
    assert not any("Org B" in cell for row in rows for cell in row)


@pytest.mark.django_db
def test_the_okr_xlsx_holds_the_same_rows(world_a, alice_client):
    csv_rows = read_csv(alice_client.get(url("export_okrs_csv", world_a)))
    response = alice_client.get(url("export_okrs_xlsx", world_a))
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    rows = [["" if c is None else str(c) for c in row] for row in book.active.iter_rows(
        values_only=True)]
    assert rows == csv_rows


@pytest.mark.django_db
def test_the_check_in_export_says_who_or_what_reported(world_a, alice_client):
    with scopes_disabled():
        CheckInFactory(key_result=world_a.key_result, author=world_a.admin.user, value=30,
                       note="@risky note", confidence="at_risk")
        CheckInFactory(key_result=world_a.key_result, value=31, source=CheckIn.Source.IMPORT)
    rows = read_csv(alice_client.get(url("export_check_ins_csv", world_a)))
    assert rows[0] == CHECK_IN_COLUMNS
    body = [dict(zip(CHECK_IN_COLUMNS, r, strict=True)) for r in rows[1:]]
    assert {r["Author or source"] for r in body} >= {"Alice Admin", "Import"}
    assert any(r["Note"] == "'@risky note" and r["Value"] == "30" for r in body)
    xlsx = alice_client.get(url("export_check_ins_xlsx", world_a))
    assert xlsx.status_code == 200


@pytest.mark.django_db
def test_the_matrix_csv_counts_each_teams_objectives_per_company_objective(world_a,
                                                                         alice_client):
    rows = read_csv(alice_client.get(url("export_matrix_csv", world_a)))
    assert rows[0][:2] == ["Team", "Team kind"]
    assert "Org A company goal" in rows[0]
    column = rows[0].index("Org A company goal")
    engineering = next(r for r in rows if r[0] == "Org A Engineering")
    assert engineering[column].startswith("1")


@pytest.mark.django_db
def test_an_export_is_a_read_only_download(world_a, alice_client):
    assert alice_client.post(url("export_okrs_csv", world_a)).status_code == 405


@pytest.mark.django_db
def test_the_tree_links_to_the_exports_and_the_review(world_a, alice_client, bob_client):
    page = alice_client.get(reverse("tree", args=[world_a.org.slug])).content.decode()
    for name in ("export_okrs_csv", "export_okrs_xlsx", "export_check_ins_csv",
                 "export_matrix_csv", "cycle_review_csv", "okr_import"):
        assert url(name, world_a) in page, name
    viewer_page = bob_client.get(reverse("tree", args=[world_a.org.slug])).content.decode()
    assert url("export_okrs_csv", world_a) in viewer_page
    assert url("okr_import", world_a) not in viewer_page


def _grow(world, start, n):
    with scopes_disabled():
        for i in range(start, start + n):
            team = TeamFactory(organization=world.org, name=f"Squad {i}", kind=Team.Kind.TEAM)
            o = ObjectiveFactory(organization=world.org, cycle=world.cycle, team=team,
                                 parent=world.company_objective, title=f"Squad goal {i}")
            kr = KeyResultFactory(objective=o)
            CheckInFactory(key_result=kr)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["export_okrs_csv", "export_check_ins_csv",
                                  "export_matrix_csv", "export_okrs_xlsx"])
def test_an_export_issues_the_same_queries_for_3_or_40_teams(world_a, alice_client, name):
    def download():
        response = alice_client.get(url(name, world_a))
        return b"".join(response.streaming_content)

    _grow(world_a, 0, 3)
    small = count_queries(download)
    _grow(world_a, 3, 37)
    large = count_queries(download)
    assert len(large[0]) > len(small[0])
    assert_same_queries(small, large)
