"""manage.py bench_pages: builds its organization, measures every page, writes the JSON."""

import json
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection
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

    keys = {"page", "persona", "p50_ms", "p95_ms", "bytes", "queries", "demo_p50_ms",
            "demo_queries", "ratio", "first_queries", "cpu_ms"}
    assert data["pages"] and all(keys <= set(row) for row in data["pages"])
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
            assert row["demo_queries"] > 0 and row["queries"] > 0 and row["cpu_ms"] > 0
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


@pytest.mark.django_db
def test_each_timed_request_starts_after_the_work_the_last_one_left(monkeypatch):
    # A save's deferred recompute and the garbage of the request before are waited for and
    # collected untimed, before every request (warm-ups included).
    events = []
    monkeypatch.setattr(bench, "wait_for_deferred", lambda: events.append("wait"))
    monkeypatch.setattr(bench.gc, "collect", lambda: events.append("collect"))

    def call():
        events.append("call")
        return SimpleNamespace(status_code=200, content=b"ok")

    m = bench.measure(call, requests=3, warmup=2)
    calls = [i for i, e in enumerate(events) if e == "call"]
    assert len(calls) == 5 and m.status == 200 and m.bytes == 2
    assert all(events[i - 2:i] == ["wait", "collect"] for i in calls)
    assert events[-2:] == ["wait", "collect"]  # nothing left running for the next page


@pytest.mark.django_db
def test_it_counts_the_queries_of_a_warm_request_and_of_the_first():
    # A page that fills a cache on its first request: the row shows what the timed requests
    # run, and the first request's count beside it.
    seen = []

    def call():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            if not seen:
                cursor.execute("SELECT 2")
        seen.append(1)
        return SimpleNamespace(status_code=200, content=b"")

    m = bench.measure(call, requests=2, warmup=2)
    assert (m.queries, m.first_queries) == (1, 2)
