"""Nothing crosses organizations.

The walk requests every URL pattern under /o/<org>/ as alice (admin of A) with ids of B's objects,
and with B's slug, for GET, POST and htmx requests: every answer is 404, never 403 or 200. A
second test fails when a URL pattern is not covered, so a new view cannot forget.
"""

import re

import pytest
from django.apps import apps
from django_scopes import ScopeError, scopes_disabled

from config.routes import all_patterns

ORG_PREFIX = "o/<slug:org_slug>/"

# URLs outside any organization, and why the walk does not need B's ids for them.
GLOBAL_URLS = {
    "root": "redirects to one of the caller's own organizations",
    "switch_org": "lists the caller's own memberships only",
    "accept_invitation": "takes a signed token, not an id; tested in tests/orgs/test_invitations",
    "unsubscribe": "takes a signed token naming the organization; tested in tests/nudges",
    "login": "public", "logout": "public",
    "password_reset": "public", "password_reset_done": "public",
    "password_reset_confirm": "signed token", "password_reset_complete": "public",
    "healthz": "public; reads no organization's data (tests/test_health.py)",
    "api_docs": "public: the API's documentation, no organization's data",
    "openapi-json": "public: the API's schema, generated from the code",
    "api-root": "ninja's root of /api/v1/: nothing is served there",
    "data_source_webhook": "takes a secret token and a signature, not an id; tested in "
                           "tests/integrations/test_inbound.py",
}
# The REST API: every endpoint is walked by test_every_api_url_answers_404_... below.
API_PREFIX = "api/v1/orgs/<org_slug>/"
ADMIN_PREFIX = "django-admin/"  # platform operators only (is_staff), across organizations


def org_patterns():
    return [(route, p) for route, p in all_patterns() if route.startswith(ORG_PREFIX)]


def ids_of(world):
    """Which of ``world``'s objects fills each URL keyword."""
    return {
        "objective_pk": world.objective.pk,
        "key_result_pk": world.key_result.pk,
        "team_pk": world.team.pk,
        "membership_pk": world.admin.pk,
        "invitation_pk": world.invitation.pk,
        "cycle_pk": world.cycle.pk,
        "dependency_pk": world.dependency.pk,
        "share_pk": world.share.pk,
        "action_pk": world.recovery_action.pk,
        "contribution_pk": world.contribution.pk,
        "workflow_pk": world.workflow.pk,
        "flag_pk": world.recascade_flag.pk,
        "check_in_pk": world.check_in.pk,
        "channel_pk": world.chat_channel.pk,
        "perspective_pk": world.perspective.pk,
        "goal_pk": world.goal.pk,
        "token_pk": world.api_token.pk,
        "kpi_pk": world.kpi.pk,
        "subscription_pk": world.webhook.pk,
        "delivery_pk": world.webhook_delivery.pk,
        "pk": world.objective.pk,  # with <node:kind> = "o"
    }


def fill(route, slug, ids):
    path = route.replace("<slug:org_slug>", slug).replace("<node:kind>", "o")
    for key, value in ids.items():
        path = path.replace(f"<int:{key}>", str(value))
    assert "<" not in path, f"no id mapping for a keyword in {route}"
    return "/" + path


REQUESTS = [
    ("GET", {}),
    ("POST", {}),
    ("GET", {"HTTP_HX_REQUEST": "true"}),
    ("POST", {"HTTP_HX_REQUEST": "true"}),
]


@pytest.mark.django_db
def test_every_org_url_answers_404_with_another_organizations_ids(world_a, world_b,
                                                                    alice_client):
    ids_b = ids_of(world_b)
    checked = 0
    for route, _ in org_patterns():
        urls = {fill(route, world_b.org.slug, ids_b)}  # B's slug: alice is not a member
        if any(f"<int:{k}>" in route for k in ids_b):
            urls.add(fill(route, world_a.org.slug, ids_b))  # A's slug, B's ids
        for url in urls:
            for method, headers in REQUESTS:
                call = alice_client.get if method == "GET" else alice_client.post
                response = call(url, {"title": "x", "value": "1"} if method == "POST" else {},
                                **headers)
                assert response.status_code == 404, (
                    f"{method} {url} {headers} answered {response.status_code}")
                checked += 1
    assert checked >= 4 * len(org_patterns())


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in(world_a, client):
    for route, _ in org_patterns():
        url = fill(route, world_a.org.slug, ids_of(world_a))
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


@pytest.mark.django_db
def test_an_unknown_organization_is_404(alice_client, world_a):
    assert alice_client.get("/o/no-such-org/").status_code == 404


def test_every_url_pattern_is_covered_by_the_walk():
    names_seen = set()
    for route, pattern in all_patterns():
        if route.startswith(ADMIN_PREFIX):
            continue
        if route.startswith(API_PREFIX):
            keywords = {k for k in pattern.pattern.converters if k != "org_slug"}
            assert keywords <= API_KEYWORDS, (
                f"{route}: add {keywords - API_KEYWORDS} to api_ids_of()")
            continue
        if route.startswith(ORG_PREFIX):
            # The walk fills every keyword from ids_of(); a new keyword needs a mapping there.
            view = pattern.callback
            assert getattr(view, "is_org_view", False), (
                f"{route} is under /o/<org>/ but its view is not wrapped in @org_view")
            keywords = {k for k in pattern.pattern.converters if k != "org_slug"}
            known = {"objective_pk", "key_result_pk", "team_pk", "membership_pk",
                     "invitation_pk", "cycle_pk", "dependency_pk", "share_pk", "action_pk",
                     "workflow_pk", "flag_pk", "check_in_pk",
                     "contribution_pk", "channel_pk", "perspective_pk", "goal_pk", "token_pk",
                     "kpi_pk", "subscription_pk", "delivery_pk",
                     "kind", "pk"}
            assert keywords <= known, f"{route}: add {keywords - known} to ids_of()"
        else:
            assert pattern.name in GLOBAL_URLS, (
                f"{route} ({pattern.name}) lives outside /o/<org>/: put it under the "
                "organization, or add it to GLOBAL_URLS with the reason it needs no walk")
            names_seen.add(pattern.name)
    assert names_seen == set(GLOBAL_URLS), "GLOBAL_URLS names a pattern that no longer exists"


def tenant_models():
    return [m for m in apps.get_models()
            if any(f.name == "organization" for f in m._meta.get_fields())]


@pytest.mark.django_db
@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m.__name__)
def test_a_query_outside_an_organization_scope_fails_loudly(model):
    with pytest.raises(ScopeError):
        model.objects.filter(pk=1).exists()
    with pytest.raises(ScopeError):
        list(model.objects.all())


def test_every_tenant_model_is_guarded():
    names = {m.__name__ for m in tenant_models()}
    assert {"Team", "Membership", "Cycle", "Invitation", "Objective", "KeyResult",
            "CheckIn", "Dependency", "DependencyEvent", "ObjectiveShare", "NetworkState",
            "Notification", "AlertEmail", "RecoveryAction", "PropagationRun", "Workflow",
            "Stakeholder", "Milestone", "StatusUpdate", "StepOverride", "Retrospective",
            "Improvement", "ReviewComment", "RecascadeFlag", "Theme", "KPI",
            "KPIValue"} <= names


PICKER_PARAMS = {  # each picker endpoint's id parameters, filled with B's ids
    "pick_objectives": lambda w: [{"cycle": w.cycle.pk}, {"exclude": w.objective.pk}],
    "pick_key_results": lambda w: [{"cycle": w.cycle.pk}, {"exclude": w.key_result.pk}],
    "pick_nodes": lambda w: [{"cycle": w.cycle.pk}, {"exclude_team": w.team.pk}],
    "pick_teams": lambda w: [{"exclude": w.team.pk}],
    "pick_people": lambda w: [],
    "pick_dependencies": lambda w: [{"cycle": w.cycle.pk}],
}


@pytest.mark.django_db
def test_pickers_refuse_another_organizations_ids_and_never_find_its_rows(world_a, world_b,
                                                                        alice_client):
    from django.urls import reverse

    picker_names = {p.name for _, p in org_patterns() if p.name.startswith("pick_")}
    assert picker_names == set(PICKER_PARAMS), "a new picker needs its parameters listed here"
    for name, params_of in PICKER_PARAMS.items():
        url = reverse(name, args=[world_a.org.slug])
        for params in params_of(world_b):
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                assert alice_client.get(url, params, **headers).status_code == 404, (
                    name, params)
        # Words the rows of both organizations carry: B's rows ("Org B ...", charlie, B's
        # key result) must still not show.
        for q in ("", "org", "goal", "key result", "engineering", "charlie", "b.test"):
            html = alice_client.get(url, {"q": q}, HTTP_HX_REQUEST="true").content.decode()
            html = re.sub(r"Nothing matches “.*?”", "", html)  # the query said back
            if q == "":
                assert "data-value=" in html, name  # A's own rows are found
            assert "Org B" not in html and "charlie" not in html.lower(), (name, q)
            assert world_b.key_result.title not in html, (name, q)


# The REST API -----------------------------------------------------------------------------------

API_KEYWORDS = {"cycle_id", "team_id", "objective_id", "key_result_id", "dependency_id",
                "workflow_id"}


def api_ids_of(world):
    return {"cycle_id": world.cycle.pk, "team_id": world.team.pk,
            "objective_id": world.objective.pk, "key_result_id": world.key_result.pk,
            "dependency_id": world.dependency.pk, "workflow_id": world.workflow.pk}


def api_routes():
    return sorted({route for route, _ in all_patterns() if route.startswith(API_PREFIX)})


def api_fill(route, slug, ids):
    path = route.replace("<org_slug>", slug)
    for key, value in ids.items():
        path = path.replace(f"<int:{key}>", str(value))
    assert "<" not in path, f"no id mapping for a keyword in {route}"
    return "/" + path


def api_body(world, route):
    """A body the route's write schema accepts, naming ``world``'s rows: the answer must come
    from the organization check, not from the input's validation (which runs first, and says
    the same whatever the organization)."""
    return {"kind": "whole" if "/shares/" in route else "numeric",
            "version": 1, "title": "x", "cycle_id": world.cycle.pk, "team_id": world.team.pk,
            "objective_id": world.objective.pk, "need": "x", "needed_by": "2030-01-01",
            "fallback": "x", "status": "committed", "value": 1,
            "confidence": "on_track", "downstream_objective_id": world.objective.pk,
            "upstream_objective_id": world.company_objective.pk}


def _call(client, method, url, token, body):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if method == "GET":
        return client.get(url, {"cycle": 1}, **headers)
    call = {"POST": client.post, "PATCH": client.patch, "DELETE": client.delete}[method]
    return call(url, body, content_type="application/json", **headers)


@pytest.mark.django_db
def test_every_api_url_answers_404_with_another_organizations_ids_and_tokens(world_a, world_b,
                                                                           client):
    """A's token on B's slug, A's token on A's slug with B's ids, B's token on A's slug, and
    B's service token on A's slug: 404 for every method, never 403, 401 or 200."""
    from api.tokens import create_token

    with scopes_disabled():
        _, service_b = create_token(membership=world_b.admin, name="b", scope="write",
                                    expires_in_days=None, service=True)
    ids_a, ids_b = api_ids_of(world_a), api_ids_of(world_b)
    checked = 0
    for route in api_routes():
        cases = [(api_fill(route, world_b.org.slug, ids_b), world_a.api_token_text,
                  api_body(world_b, route)),
                 (api_fill(route, world_a.org.slug, ids_a), world_b.api_token_text,
                  api_body(world_a, route)),
                 (api_fill(route, world_a.org.slug, ids_a), service_b, api_body(world_a, route))]
        if any(f"<int:{k}>" in route for k in ids_b):
            cases.append((api_fill(route, world_a.org.slug, ids_b), world_a.api_token_text,
                          api_body(world_a, route)))
        for url, token, body in cases:
            for method in ("GET", "POST", "PATCH", "DELETE"):
                response = _call(client, method, url, token, body)
                assert response.status_code in (404, 405), (
                    f"{method} {url} answered {response.status_code}: {response.content[:200]}")
                if response.status_code == 405:  # the method is not served there at all
                    continue
                assert response["Content-Type"] == "application/problem+json"
                checked += 1
    assert checked >= 3 * len(api_routes())


@pytest.mark.django_db
def test_the_api_refuses_anonymous_callers(world_a, client):
    for route in api_routes():
        url = api_fill(route, world_a.org.slug, api_ids_of(world_a))
        statuses = {client.get(url, {"cycle": world_a.cycle.pk}).status_code,
                    client.post(url, {}, content_type="application/json").status_code}
        assert statuses in ({401}, {401, 405}), (url, statuses)  # 405: a method not served
