"""The history pages: each object's timeline, the console's search and its CSV export."""

import pytest
from django_scopes import scope

import history
from history.models import Change
from okrs.models import Objective

from ..querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def rename(world, title, times=1):
    with scope(organization=world.org), history.acting_as(world.admin.user):
        o = Objective.objects.for_org(world.org).get(pk=world.objective.pk)
        for i in range(times):
            o.title = f"{title} {i}" if times > 1 else title
            o.save()


def test_an_objectives_history_says_who_changed_what_in_words(world_a, alice_client):
    rename(world_a, "Faster deploys")
    slug, pk = world_a.org.slug, world_a.objective.pk
    page = alice_client.get(f"/o/{slug}/objectives/{pk}/history/").content.decode()
    assert "Alice Admin" in page and "changed this objective" in page
    assert f"“{world_a.objective.title}” → “Faster deploys”" in page
    assert f'href="/o/{slug}/objectives/{pk}/history/"' in alice_client.get(
        f"/o/{slug}/objectives/{pk}/").content.decode()


def test_a_viewer_reads_the_history_of_every_kind_of_object(world_a, bob_client):
    w, slug = world_a, world_a.org.slug
    for url in (f"objectives/{w.objective.pk}", f"key-results/{w.key_result.pk}",
                f"teams/{w.team.pk}", f"dependencies/{w.dependency.pk}",
                f"workflows/{w.workflow.pk}"):
        response = bob_client.get(f"/o/{slug}/{url}/history/")
        assert response.status_code == 200, url
        assert "History of" in response.content.decode()


def test_the_timeline_is_newest_first_and_paginated(world_a, alice_client):
    rename(world_a, "Title", times=30)
    url = f"/o/{world_a.org.slug}/objectives/{world_a.objective.pk}/history/"
    first = alice_client.get(url).content.decode()
    assert first.index("“Title 29”") < first.index("“Title 28”")
    assert "Page 1 of 2" in first
    assert "“Title 0”" in alice_client.get(url + "?page=2").content.decode()


def test_the_timeline_costs_the_same_queries_with_more_history(world_a, alice_client):
    url = f"/o/{world_a.org.slug}/objectives/{world_a.objective.pk}/history/"
    rename(world_a, "Few", times=2)
    small = count_queries(lambda: alice_client.get(url))
    rename(world_a, "Many", times=60)
    large = count_queries(lambda: alice_client.get(url))
    assert_same_queries(small, large)


def test_the_console_searches_by_person_type_date_and_text(world_a, alice_client):
    rename(world_a, "Zebra launch")
    url = f"/o/{world_a.org.slug}/console/history/"
    page = alice_client.get(url, {"person": "alice", "type": "objective", "q": "zebra",
                                  "from": "2000-01-01"}).content.decode()
    assert "Zebra launch" in page and "1 change found" in page
    assert "No change matches" in alice_client.get(url, {"person": "nobody"}).content.decode()
    assert "No change matches" in alice_client.get(url, {"to": "2000-01-01"}).content.decode()


def test_the_console_page_costs_the_same_queries_with_more_history(world_a, alice_client):
    url = f"/o/{world_a.org.slug}/console/history/"
    rename(world_a, "Few", times=2)
    small = count_queries(lambda: alice_client.get(url))
    rename(world_a, "Many", times=80)
    large = count_queries(lambda: alice_client.get(url))
    assert_same_queries(small, large)


def test_the_console_history_is_for_admins_only(world_a, bob_client):
    assert bob_client.get(f"/o/{world_a.org.slug}/console/history/").status_code == 403
    assert bob_client.get(f"/o/{world_a.org.slug}/console/history.csv").status_code == 403


def test_the_csv_export_streams_one_row_per_changed_field(world_a, alice_client):
    rename(world_a, "=HYPERLINK(evil)")
    response = alice_client.get(f"/o/{world_a.org.slug}/console/history.csv",
                                {"type": "objective", "person": "Alice"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("when (UTC),who,actor kind,action")
    assert any("Alice Admin" in line and "'=HYPERLINK(evil)" in line for line in lines[1:])


def test_another_organizations_history_never_shows(world_a, world_b, alice_client):
    rename(world_b, "Secret plan")
    page = alice_client.get(f"/o/{world_a.org.slug}/console/history/",
                            {"q": "Secret"}).content.decode()
    assert "Secret plan" not in page
    with scope(organization=world_b.org):
        assert Change.objects.for_org(world_b.org).filter(object_label="Secret plan").exists()


def test_a_history_page_only_answers_get(world_a, alice_client):
    url = f"/o/{world_a.org.slug}/objectives/{world_a.objective.pk}/history/"
    assert alice_client.post(url).status_code == 405
