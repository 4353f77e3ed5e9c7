"""manage.py bench_pages: builds its organization, measures every page, writes the JSON."""

import json

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from orgs import bench
from orgs.models import Organization
from orgs.trees import find_problems

TINY = ["--people", "12", "--teams", "10", "--objectives", "16", "--krs", "30",
        "--dependencies", "6", "--checkins", "1", "--requests", "1", "--warmup", "1"]


@pytest.mark.django_db
def test_it_measures_every_page_of_both_organizations(tmp_path, capsys):
    out = tmp_path / "bench.json"
    call_command("bench_pages", *TINY, "--persona", "admin", "--json", str(out))
    data = json.loads(out.read_text())

    keys = {"page", "persona", "p50_ms", "p95_ms", "bytes", "queries", "demo_p50_ms", "ratio"}
    assert data["pages"] and all(set(row) == keys for row in data["pages"])
    measured = {(row["page"], row["persona"]) for row in data["pages"]}
    # Every GET page under /o/<org>/ is measured for the org admin on the large organization,
    # unless it only takes POSTs or redirects (the console's front door).
    large = [s for s in data["not_measured"] if s["org"].startswith("bench-pages-")]
    post_only = {s["page"] for s in large if s["persona"] == "admin"}
    assert [s for s in large if s["why"] not in ("GET answers 405", "GET answers 302",
                                                 "a download, not a page")] == []
    for name, _ in bench.org_pages():
        assert (name, "admin") in measured or name in post_only, name
    assert {"home", "tree", "tree_children", "objective", "network", "workflow", "report",
            "review", "recascade", "network_map", "dependency_new", "key_result_link",
            "objective_new"} <= {p for p, persona in measured if persona == "admin"}
    # The POSTs, and the demo beside each row.
    assert ("check_in POST (eager)", "team_lead") in measured
    assert ("objective_edit POST (eager)", "team_lead") in measured
    for row in data["pages"]:
        assert row["p95_ms"] >= row["p50_ms"] > 0
        if row["page"] in ("home", "tree", "objective"):
            assert row["demo_p50_ms"] > 0 and row["ratio"] > 0
    assert "Targets missed:" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_build_is_idempotent_and_keeps_the_trees_consistent():
    sizes = {"people": 12, "teams": 10, "objectives": 16, "krs": 30, "dependencies": 6,
             "checkins": 1}
    first = bench.ensure_large(sizes)
    second = bench.ensure_large(sizes)
    assert first.org.pk == second.org.pk
    with scopes_disabled():
        assert Organization.objects.filter(slug__startswith="bench-pages-").count() == 1
    assert find_problems() == []
    assert set(first.users) == set(bench.PERSONAS)


@pytest.mark.django_db
def test_it_measures_as_each_persona(tmp_path):
    out = tmp_path / "bench.json"
    call_command("bench_pages", *TINY, "--only", "home", "--json", str(out))
    rows = json.loads(out.read_text())["pages"]
    assert {(r["page"], r["persona"]) for r in rows if r["page"] == "home"} == {
        ("home", persona) for persona in bench.PERSONAS}
