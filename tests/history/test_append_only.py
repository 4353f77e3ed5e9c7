"""History entries are never changed or deleted: the model refuses in code, and PostgreSQL
refuses in the database whatever runs the SQL."""

from types import SimpleNamespace

import pytest
from django.db import DatabaseError, connection, transaction
from django_scopes import scope

import history
from history import context
from history.models import AppendOnly, Change
from okrs.models import Objective

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(world_a):
    with scope(organization=world_a.org), history.acting_as(world_a.admin.user):
        o = Objective.objects.for_org(world_a.org).get(pk=world_a.objective.pk)
        o.title = "A new title"
        o.save()
        return Change.objects.for_org(world_a.org).filter(object_id=o.pk,
                                                          object_type="objective").first()


def test_the_model_refuses_to_change_or_delete_an_entry(entry, world_a):
    entry.actor_label = "Someone else"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with scope(organization=world_a.org):
        with pytest.raises(AppendOnly):
            Change.objects.for_org(world_a.org).update(actor_label="x")
        with pytest.raises(AppendOnly):
            Change.objects.for_org(world_a.org).delete()


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="the trigger is PostgreSQL's; SQLite relies on the model")
@pytest.mark.parametrize("sql", [
    "UPDATE history_change SET actor_label = 'x' WHERE id = %s",
    "DELETE FROM history_change WHERE id = %s",
])
def test_postgresql_refuses_update_and_delete_in_the_database(entry, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])


def test_the_history_is_scoped_to_its_organization(entry, world_a, world_b):
    with scope(organization=world_b.org):
        assert not Change.objects.for_org(world_b.org).filter(pk=entry.pk).exists()


def _request(user=None, auth=None):
    from django.contrib.auth.models import AnonymousUser

    return SimpleNamespace(user=user or AnonymousUser(), auth=auth)


def test_the_actor_is_read_from_the_request_when_the_change_is_recorded(world_a):
    request = _request()
    token = context._request.set(request)
    try:
        assert history.current_actor() == history.SYSTEM
        request.user = world_a.admin.user  # set later, as a token authentication does
        actor = history.current_actor()
        assert (actor.kind, actor.label, actor.user_id) == (
            "person", "Alice Admin", world_a.admin.user_id)
        request.user = _request().user
        request.auth = SimpleNamespace(name="Nightly sync")
        assert history.current_actor().label == "API token Nightly sync"
        assert history.current_actor().kind == "api"
    finally:
        context._request.reset(token)


def test_a_request_through_the_middleware_is_credited_to_its_person(world_a, alice_client):
    o = world_a.objective
    response = alice_client.post(f"/o/{world_a.org.slug}/objectives/{o.pk}/retire/",
                                 {"confirm": "yes"})
    assert response.status_code in (200, 302)
    with scope(organization=world_a.org):
        entry = Change.objects.for_org(world_a.org).filter(object_type="objective",
                                                           object_id=o.pk).first()
    assert (entry.actor_label, entry.actor_id) == ("Alice Admin", world_a.admin.user_id)
