"""The objective page's add-a-key-result and share forms (with their pickers) load when they are
opened: through htmx, or, without JavaScript, by a link to the form's page."""

import pytest
from django.urls import reverse

from ..factories import ObjectiveFactory

pytestmark = pytest.mark.django_db


def page_of(client, world, objective, query="", **headers):
    response = client.get(reverse("objective", args=[world.org.slug, objective.pk]) + query,
                          **headers)
    assert response.status_code == 200
    return response


def test_the_add_form_loads_when_opened_once_the_objective_has_key_results(world_a,
                                                                          alice_client):
    w = world_a
    new_kr = reverse("key_result_new", args=[w.org.slug, w.objective.pk])
    html = page_of(alice_client, w, w.objective).content.decode()
    add = html[html.index('<details class="add-kr"'):]
    add = add[:add.index("</details>")]
    assert f'hx-get="{new_kr}"' in add and 'hx-trigger="toggle once"' in add
    assert 'name="title"' not in add and f'<a href="{new_kr}">' in add  # a link without JS
    form = alice_client.get(new_kr, HTTP_HX_REQUEST="true").content.decode()
    assert form.lstrip().startswith("<form") and 'name="title"' in form
    assert "<html" not in form
    assert 'name="title"' in alice_client.get(new_kr).content.decode()  # the form's own page


def test_the_add_form_is_open_on_the_page_while_there_is_no_key_result(world_a, alice_client):
    w = world_a
    empty = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team, title="Fresh")
    html = page_of(alice_client, w, empty).content.decode()
    add = html[html.index('<details class="add-kr"'):]
    assert add.startswith('<details class="add-kr" open>')
    assert 'name="title"' in add[:add.index("</details>")]


def test_the_share_form_loads_when_opened(world_a, alice_client):
    w = world_a
    share_add = reverse("share_add", args=[w.org.slug, w.objective.pk])
    response = page_of(alice_client, w, w.objective)
    html = response.content.decode()
    assert 'hx-get="' + reverse("objective", args=[w.org.slug, w.objective.pk]) \
        + '?section=share"' in html
    assert share_add not in html and "?section=share#network" in html  # a link without JS
    assert "HX-Request" in response["Vary"]
    fragment = page_of(alice_client, w, w.objective, "?section=share",
                       HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert body.lstrip().startswith("<form") and f'action="{share_add}"' in body
    assert 'name="team"' in body and "<html" not in body
    assert "HX-Request" in fragment["Vary"]
    # Without JavaScript the link opens the whole page with the form open.
    whole = page_of(alice_client, w, w.objective, "?section=share").content.decode()
    assert '<details class="add-share" open>' in whole and f'action="{share_add}"' in whole


def test_a_reader_who_may_not_share_gets_no_share_form(world_a, bob_client):
    w = world_a
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        html = page_of(bob_client, w, w.objective, "?section=share", **headers).content.decode()
        assert "<html" in html and "Share with a team" not in html
        assert reverse("share_add", args=[w.org.slug, w.objective.pk]) not in html
