"""Three kinds of dependency: delegation, shared goal, supporting. Each is chosen on the form,
asks for its plan B in its own words, and reads in its own words on both sides (the requesting
and the providing team's pages), on the network page, on the map and in the request's
notification. Propagation does not care which kind it is."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from dependencies import kinds, network, services
from dependencies.models import Dependency, Notification
from okrs.models import KeyResult
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

WORDS = {
    "delegation": ("Delegation", "delegates to", "asks Engineering to do part of its work"),
    "shared": ("Shared goal", "shares a goal with", "asks Engineering to pursue a goal together"),
    "supporting": ("Supporting", "is supported by", "Sales asks Engineering: "),
}


def url(r, name, *args):
    return reverse(name, args=[r.org.slug, *args])


def request(r, kind, capture, need="Audit logs for the pilot"):
    with scope(organization=r.org), capture(execute=True):
        return services.request_dependency(
            membership=r.mia_m, downstream=r.win, upstream=r.platform, need=need,
            needed_by=r.cycle.end_date, fallback="Pilot without audit logs", kind=kind)


@pytest.mark.parametrize("kind", ["delegation", "shared", "supporting"])
def test_each_kind_reads_in_its_own_words_on_both_sides(revenue, kind,
                                                        django_capture_on_commit_callbacks):
    r = revenue
    d = request(r, kind, django_capture_on_commit_callbacks)
    assert d.kind == kind
    label, verb, ask = WORDS[kind]
    sentence = f"<strong>Sales</strong> {verb} <strong>Engineering</strong>"
    # The requesting team's objective ("Depends on") and the providing team's ("Needed by").
    for who, objective in ((r.mia, r.win), (r.ethan, r.platform)):
        page = client_for(who).get(url(r, "objective", objective.pk)).content.decode()
        assert sentence in page and f">{label}</span>" in page, who
    detail = client_for(r.ethan).get(url(r, "dependency", d.pk)).content.decode()
    assert f"Sales {verb} Engineering</h1>" in detail
    assert kinds.WORDING[kind].explain.lower() in detail
    network_page = client_for(r.liam).get(url(r, "network")).content.decode()
    assert sentence in network_page
    # The providing team is asked in the kind's words.
    with scopes_disabled():
        told = Notification.objects.filter(user=r.ethan).values_list("title", flat=True)
    assert any(ask in t and "Audit logs for the pilot" in t for t in told), list(told)


def test_the_network_map_names_the_kind_of_each_dependency(revenue, alice_client,
                                                           django_capture_on_commit_callbacks):
    r = revenue
    request(r, "delegation", django_capture_on_commit_callbacks)
    svg = alice_client.get(url(r, "network_map") + f"?cycle={r.cycle.pk}").content.decode()
    assert "edge kind-dependency dep-delegation" in svg
    assert "delegation: Audit logs for the pilot" in svg
    # The dependency of the fixture, from before kinds: supporting.
    assert "edge kind-dependency dep-supporting" in svg


@pytest.mark.parametrize("kind", ["delegation", "shared", "supporting"])
def test_the_form_asks_for_the_plan_b_in_the_words_of_the_kind(revenue, kind):
    r = revenue
    mia = client_for(r.mia)
    page = mia.get(url(r, "dependency_new", "o", r.win.pk) + f"?kind={kind}").content.decode()
    prompt = kinds.WORDING[kind].fallback.replace("'", "&#x27;")
    assert f'placeholder="{prompt}"' in page
    for other in set(kinds.WORDING) - {kind}:
        assert kinds.WORDING[other].fallback.replace("'", "&#x27;") not in page
    # Each kind is offered with its one-line explanation.
    for w in kinds.WORDING.values():
        assert f"{w.label}: {w.explain}".replace("'", "&#x27;") in page


def test_the_kind_chosen_on_the_form_is_stored(revenue, django_capture_on_commit_callbacks):
    r = revenue
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(r.mia).post(url(r, "dependency_new", "o", r.win.pk), {
            "kind": "shared", "upstream": f"o:{r.platform.pk}", "need": "One launch together",
            "needed_by": r.cycle.end_date.isoformat(), "fallback": "Launch alone, later"})
    assert response.status_code == 302
    with scope(organization=r.org):
        assert Dependency.objects.get(need="One launch together").kind == "shared"


def test_an_unknown_kind_is_refused_and_nothing_is_stored(revenue,
                                                          django_capture_on_commit_callbacks):
    r = revenue
    with pytest.raises(ValidationError):
        request(r, "favour", django_capture_on_commit_callbacks)
    response = client_for(r.mia).post(url(r, "dependency_new", "o", r.win.pk), {
        "kind": "favour", "upstream": f"o:{r.platform.pk}", "need": "Something odd",
        "needed_by": r.cycle.end_date.isoformat(), "fallback": "Do without"})
    assert response.status_code == 200 and "Something odd" in response.content.decode()
    with scopes_disabled():
        assert not Dependency.objects.filter(need__in=["Audit logs for the pilot",
                                                       "Something odd"]).exists()


@pytest.mark.parametrize("kind", ["delegation", "shared", "supporting"])
def test_propagation_is_the_same_for_every_kind(revenue, kind,
                                                django_capture_on_commit_callbacks):
    r = revenue
    with scopes_disabled():
        Dependency.objects.filter(pk=r.dependency.pk).update(kind=kind)
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        network.run(r.cycle)
    with scopes_disabled():
        deals = KeyResult.objects.get(pk=r.deals.pk)
    # Upstream off track makes the dependent at risk, never off track: whatever the kind.
    assert deals.effective_health == "at_risk"
