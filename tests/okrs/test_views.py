import re
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from okrs.models import KPI, CheckIn, KeyResult, Objective
from orgs.models import Role, Team

from ..conftest import client_for
from ..factories import (
    CheckInFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)
from ..querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def url(world, name, *args):
    from django.urls import reverse

    return reverse(name, args=[world.org.slug, *args])


# Pages -----------------------------------------------------------------------------------------

def test_home_shows_company_objectives_my_teams_and_recent_check_ins(world_a, alice_client):
    world_a.admin.teams.add(world_a.team)
    html = alice_client.get(url(world_a, "home")).content.decode()
    assert "Org A company goal" in html and "Org A team goal" in html
    assert "Recent check-ins" in html and world_a.key_result.title in html


def test_home_without_a_cycle_says_what_to_do_next(alice, alice_client):
    from ..factories import OrganizationFactory

    org = OrganizationFactory(slug="empty")
    MembershipFactory(organization=org, user=alice, role=Role.ADMIN)
    html = alice_client.get("/o/empty/").content.decode()
    assert "No planning cycle yet" in html and "Open the first cycle" in html


def test_the_tree_lists_roots_and_loads_children_on_demand(world_a, alice_client):
    html = alice_client.get(url(world_a, "tree")).content.decode()
    assert "Org A company goal" in html and "1 aligned" in html
    children_url = url(world_a, "tree_children", world_a.company_objective.pk)
    assert f'hx-get="{children_url}"' in html
    fragment = alice_client.get(children_url, HTTP_HX_REQUEST="true")
    assert "Org A team goal" in fragment.content.decode()
    assert "<html" not in fragment.content.decode()
    assert "HX-Request" in fragment["Vary"]
    # Without htmx the link leads to the objective page, which lists aligned objectives.
    assert alice_client.get(children_url).status_code == 302


def test_retiring_a_parent_keeps_its_live_children_on_the_tree(world_a, alice_client):
    alice_client.post(url(world_a, "objective_retire", world_a.company_objective.pk),
                      {"confirm": "yes"})
    html = alice_client.get(url(world_a, "tree")).content.decode()
    assert url(world_a, "objective", world_a.company_objective.pk) + '"' not in html
    # The child is now a root: there is no retired node left to open to reach it.
    assert url(world_a, "objective", world_a.objective.pk) + '"' in html


def test_the_objective_page_shows_krs_history_and_how_health_is_derived(world_a, alice_client):
    html = alice_client.get(url(world_a, "objective", world_a.objective.pk)).content.decode()
    assert world_a.key_result.title in html
    assert "How is this worked out?" in html and "of the cycle gone" in html
    assert "Check-in history (1)" in html and "<polyline" in html
    assert "Org A company goal" in html  # the alignment path


def test_the_team_page_shows_charter_scorecard_okrs_and_members(world_a, alice_client):
    Team.objects.with_scopes_disabled().filter(pk=world_a.team.pk).update(
        charter="We keep the lights on.")
    with scopes_disabled():
        KPI.objects.create(organization=world_a.org, team=world_a.team, name="Uptime",
                           unit="%", current_value=Decimal("99.9"), health="healthy",
                           healthy_at=Decimal("99.5"), warning_at=Decimal("99"))
    world_a.admin.teams.add(world_a.team)
    html = alice_client.get(url(world_a, "team", world_a.team.pk)).content.decode()
    for text in ("We keep the lights on.", "Uptime", "99.9%", "Org A team goal", "Alice Admin"):
        assert text in html


def test_a_member_can_switch_between_organizations(world_a, world_b, alice, alice_client):
    MembershipFactory(organization=world_b.org, user=alice, role=Role.VIEWER)
    html = alice_client.get("/orgs/").content.decode()
    assert "Org A" in html and "Org B" in html
    assert alice_client.get(url(world_b, "home")).status_code == 200
    assert alice_client.get("/")["Location"] == "/o/org-b/"  # remembers the last one


def test_pages_run_under_a_strict_content_security_policy(world_a, alice_client):
    response = alice_client.get(url(world_a, "home"))
    csp = response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    html = response.content.decode()
    assert f'nonce="{nonce}"' in html
    assert re.findall(r"<script(?![^>]*nonce=)", html) == []  # every script carries the nonce
    assert " onclick=" not in html and "style=" not in html


# Forms, with and without htmx ------------------------------------------------------------------

def test_adding_an_objective_aligned_to_a_company_objective(world_a, alice_client):
    response = alice_client.post(url(world_a, "objective_new"), {
        "title": "Halve incident time", "team": world_a.team.pk,
        "parent": world_a.company_objective.pk, "state": "draft"})
    with scopes_disabled():
        created = Objective.objects.get(title="Halve incident time")
    assert response.status_code == 302 and response["Location"].endswith(f"/{created.pk}/")
    assert created.parent_id == world_a.company_objective.pk


def test_aligning_to_another_organizations_objective_is_a_form_error(world_a, world_b,
                                                                     alice_client):
    response = alice_client.post(url(world_a, "objective_new"), {
        "title": "Sneaky", "team": world_a.team.pk, "parent": world_b.company_objective.pk,
        "state": "draft"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    with scopes_disabled():
        assert not Objective.objects.filter(title="Sneaky").exists()


def test_aligning_to_an_objective_of_another_cycle_is_a_form_error(world_a, alice_client):
    from ..factories import CycleFactory

    other = ObjectiveFactory(organization=world_a.org, cycle=CycleFactory(organization=world_a.org))
    response = alice_client.post(url(world_a, "objective_new"), {
        "title": "Elsewhere", "team": world_a.team.pk, "parent": other.pk, "state": "draft"})
    assert "Select a valid choice" in response.content.decode()


def test_aligning_an_objective_to_its_descendant_is_a_form_error(world_a, alice_client):
    child = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=world_a.team,
                             parent=world_a.objective)
    response = alice_client.post(url(world_a, "objective_edit", world_a.objective.pk), {
        "title": "Loop", "team": world_a.team.pk, "parent": child.pk, "state": "published",
        "version": world_a.objective.version})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).title == "Org A team goal"


def test_two_edits_from_stale_forms_do_not_overwrite_each_other(world_a, alice_client):
    form = {"team": world_a.team.pk, "parent": world_a.company_objective.pk,
            "state": "published", "version": world_a.objective.version}
    edit_url = url(world_a, "objective_edit", world_a.objective.pk)
    first = alice_client.post(edit_url, form | {"title": "Alice's title"})
    second = client_for(UserFactory()).post(edit_url, form)  # not even a member: 404
    assert first.status_code == 302 and second.status_code == 404
    stale = alice_client.post(edit_url, form | {"title": "From the older tab"})
    html = stale.content.decode()
    assert stale.status_code == 200 and "changed this objective while you were editing" in html
    assert "From the older tab" in html  # the user's text is kept in the form
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).title == "Alice's title"


def hidden_version(html):
    return re.search(r'<input type="hidden" name="version" value="(\d+)"', html).group(1)


def test_saving_again_after_a_stale_edit_goes_through(world_a, alice_client):
    form = {"team": world_a.team.pk, "parent": world_a.company_objective.pk,
            "state": "published", "version": world_a.objective.version}
    edit_url = url(world_a, "objective_edit", world_a.objective.pk)
    assert alice_client.post(edit_url, form | {"title": "Alice's title"}).status_code == 302
    stale = alice_client.post(edit_url, form | {"title": "From the older tab"}).content.decode()
    assert "changed this objective while you were editing" in stale
    assert 'value="From the older tab"' in stale
    again = alice_client.post(edit_url, form | {"title": "From the older tab",
                                                "version": hidden_version(stale)})
    assert again.status_code == 302
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).title == "From the older tab"


def test_saving_a_key_result_again_after_a_stale_edit_goes_through(world_a, alice_client):
    form = {"kind": "numeric", "start_value": "0", "target_value": "100", "weight": "1",
            "version": world_a.key_result.version}
    edit_url = url(world_a, "key_result_edit", world_a.key_result.pk)
    assert alice_client.post(edit_url, form | {"title": "First"}).status_code == 302
    stale = alice_client.post(edit_url, form | {"title": "Second"}).content.decode()
    assert "changed while you were editing" in stale and 'value="Second"' in stale
    again = alice_client.post(edit_url, form | {"title": "Second",
                                                "version": hidden_version(stale)})
    assert again.status_code == 302
    with scopes_disabled():
        assert KeyResult.objects.get(pk=world_a.key_result.pk).title == "Second"


def test_script_tags_in_titles_are_rendered_escaped(world_a, alice_client):
    evil = '<script>alert("x")</script>'
    ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=world_a.company,
                     title=evil)
    for page in ("home", "tree"):
        html = alice_client.get(url(world_a, page)).content.decode()
        assert evil not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


@pytest.mark.parametrize("data, error", [
    ({"title": "x" * 201}, "at most 200 characters"),
    ({"title": ""}, "This field is required"),
    ({"title": "ok", "team": "not-a-number"}, "Select a valid choice"),
])
def test_bad_objective_input_is_a_form_error_and_writes_nothing(world_a, alice_client, data,
                                                                error):
    with scopes_disabled():
        before = Objective.objects.count()
    form = {"team": world_a.team.pk, "parent": world_a.company_objective.pk, "state": "draft"}
    response = alice_client.post(url(world_a, "objective_new"), form | data)
    assert response.status_code == 200 and error in response.content.decode()
    with scopes_disabled():
        assert Objective.objects.count() == before


@pytest.mark.parametrize("value, error", [
    ("lots", "Enter a number"),
    ("1e400", "no more than 16 digits"),
    ("NaN", "Enter a number"),
    ("123456789012345678", "no more than 16 digits"),
])
def test_bad_check_in_values_are_form_errors(world_a, alice_client, value, error):
    response = alice_client.post(url(world_a, "check_in", world_a.key_result.pk),
                                 {"value": value, "confidence": "on_track"})
    assert response.status_code == 200 and error in response.content.decode()
    with scopes_disabled():
        assert CheckIn.objects.filter(key_result=world_a.key_result).count() == 1


def test_a_key_result_with_target_equal_to_start_is_a_form_error(world_a, alice_client):
    response = alice_client.post(url(world_a, "key_result_new", world_a.objective.pk), {
        "title": "Flat", "kind": "numeric", "start_value": "5", "target_value": "5",
        "weight": "1"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "target must differ" in html
    assert response["HX-Retarget"] == "#kr-new-form"


def test_an_htmx_check_in_returns_the_key_results_and_the_new_summary(world_a, alice_client):
    response = alice_client.post(url(world_a, "check_in", world_a.key_result.pk), {
        "value": "50", "confidence": "at_risk", "note": "Half <b>way</b>"},
        HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="key-results"' in html
    assert 'id="objective-summary" class="card summary" hx-swap-oob="true"' in html
    assert "50%" in html and "At risk" in html and "Half &lt;b&gt;way&lt;/b&gt;" in html
    with scopes_disabled():
        kr = KeyResult.objects.get(pk=world_a.key_result.pk)
    assert kr.current_value == Decimal("50") and kr.confidence == "at_risk"


def test_a_check_in_without_javascript_redirects_to_the_objective(world_a, alice_client):
    response = alice_client.post(url(world_a, "check_in", world_a.key_result.pk),
                                 {"value": "30", "confidence": "on_track"})
    assert response.status_code == 302
    assert response["Location"] == url(world_a, "objective", world_a.objective.pk)


def test_the_check_in_page_opened_on_its_own_posts_the_form_plainly(world_a, alice_client):
    # Opened in a new tab there is no #key-results to swap into: htmx would refuse to send.
    page = alice_client.get(url(world_a, "check_in", world_a.key_result.pk)).content.decode()
    assert "Save check-in" in page and "hx-post" not in page
    fragment = alice_client.get(url(world_a, "check_in", world_a.key_result.pk),
                                HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-target="#key-results"' in fragment


def test_retiring_asks_first_then_retires(world_a, alice_client):
    retire_url = url(world_a, "objective_retire", world_a.objective.pk)
    assert "Retire “Org A team goal”?" in alice_client.get(retire_url).content.decode()
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).state == "published"
    assert alice_client.post(retire_url, {"confirm": "yes"}).status_code == 302
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).state == "retired"


def test_retiring_in_a_closed_cycle_says_why_and_changes_nothing(world_a, alice_client):
    from orgs.models import Cycle

    Cycle.objects.with_scopes_disabled().filter(pk=world_a.cycle.pk).update(status="closed")
    response = alice_client.post(url(world_a, "objective_retire", world_a.objective.pk),
                                 {"confirm": "yes"}, follow=True)
    assert response.status_code == 200 and "This cycle is closed" in response.content.decode()
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).state == "published"


def test_adding_a_key_result_in_a_closed_cycle_is_a_form_error(world_a, alice_client):
    from orgs.models import Cycle

    Cycle.objects.with_scopes_disabled().filter(pk=world_a.cycle.pk).update(status="closed")
    response = alice_client.post(url(world_a, "key_result_new", world_a.objective.pk), {
        "title": "Too late", "kind": "numeric", "start_value": "0", "target_value": "10",
        "weight": "1"})
    assert response.status_code == 200 and "This cycle is closed" in response.content.decode()
    with scopes_disabled():
        assert not KeyResult.objects.filter(title="Too late").exists()


# Roles -----------------------------------------------------------------------------------------

def test_a_viewer_reads_but_cannot_edit(world_a, bob_client):
    page = bob_client.get(url(world_a, "objective", world_a.objective.pk)).content.decode()
    assert "Check in" not in page and "Retire" not in page
    for name, pk in [("objective_edit", world_a.objective.pk),
                     ("objective_retire", world_a.objective.pk),
                     ("key_result_new", world_a.objective.pk),
                     ("key_result_edit", world_a.key_result.pk),
                     ("check_in", world_a.key_result.pk)]:
        assert bob_client.get(url(world_a, name, pk)).status_code == 403, name
        assert bob_client.post(url(world_a, name, pk), {"title": "x"}).status_code == 403, name
    assert bob_client.get(url(world_a, "console")).status_code == 403


def test_a_team_lead_edits_only_its_own_teams_okrs(world_a):
    lead = UserFactory()
    Team.objects.with_scopes_disabled().filter(pk=world_a.team.pk).update(lead=lead)
    MembershipFactory(organization=world_a.org, user=lead, role=Role.TEAM_LEAD)
    other_team = TeamFactory(organization=world_a.org, name="Sales")
    other = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=other_team,
                             parent=world_a.company_objective)
    c = client_for(lead)
    assert c.get(url(world_a, "objective_edit", world_a.objective.pk)).status_code == 200
    assert c.get(url(world_a, "objective_edit", other.pk)).status_code == 403
    assert c.get(url(world_a, "objective_edit", world_a.company_objective.pk)).status_code == 403


# Query budgets ---------------------------------------------------------------------------------

def grow(world, n):
    """n more objectives: a tenth company objectives, the rest team objectives aligned to them,
    each with two KRs and a check-in."""
    world.admin.teams.add(world.team)
    roots = [ObjectiveFactory(organization=world.org, cycle=world.cycle, team=world.company)
             for _ in range(max(1, n // 10))]
    for i in range(n - len(roots)):
        ObjectiveFactory(organization=world.org, cycle=world.cycle, team=world.team,
                         parent=roots[i % len(roots)])
    with scopes_disabled():
        objectives = list(Objective.objects.filter(organization=world.org))
        krs = KeyResult.objects.bulk_create([
            KeyResult(organization=world.org, objective=o, owner_team=o.team, title=f"KR {k}",
                      start_value=0, target_value=10, current_value=k, confidence="at_risk")
            for o in objectives for k in range(2)])
    for kr in krs[:50]:
        CheckInFactory(key_result=kr)


@pytest.mark.parametrize("page", ["home", "tree"])
def test_page_queries_do_not_grow_with_the_data(world_a, alice_client, page,
                                                django_assert_max_num_queries):
    grow(world_a, 20)
    small = count_queries(lambda: alice_client.get(url(world_a, page)))
    grow(world_a, 380)
    # 16, plus the misalignment report's three reads on the home page (alignment.report), plus
    # the home page's counts (its lists' totals, and two of what waits for me).
    with django_assert_max_num_queries(21):
        large = count_queries(lambda: alice_client.get(url(world_a, page)))
    assert large[0].status_code == 200
    assert_same_queries(small, large)


def test_objective_page_queries_do_not_grow_with_children(world_a, alice_client):
    def children(n):
        for _ in range(n):
            o = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle,
                                 team=world_a.team, parent=world_a.objective)
            KeyResultFactory(objective=o)
    children(3)
    page = url(world_a, "objective", world_a.objective.pk)
    small = count_queries(lambda: alice_client.get(page))
    children(60)
    assert_same_queries(small, count_queries(lambda: alice_client.get(page)))


def test_the_objective_edit_form_opens_inline_with_htmx(world_a, alice_client):
    edit_url = url(world_a, "objective_edit", world_a.objective.pk)
    fragment = alice_client.get(edit_url, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith("<form") and f'hx-post="{edit_url}"' in fragment
    bad = alice_client.post(edit_url, {"title": "", "team": world_a.team.pk,
                                       "state": "published", "version": 1},
                            HTTP_HX_REQUEST="true")
    assert bad.content.decode().lstrip().startswith("<form")
    assert "This field is required" in bad.content.decode()
    ok = alice_client.post(edit_url, {"title": "Renamed", "team": world_a.team.pk,
                                      "parent": world_a.company_objective.pk,
                                      "state": "published", "version": 1},
                           HTTP_HX_REQUEST="true")
    assert ok["HX-Redirect"] == url(world_a, "objective", world_a.objective.pk)


def test_adding_a_key_result_with_htmx_empties_the_add_form(world_a, alice_client):
    response = alice_client.post(url(world_a, "key_result_new", world_a.objective.pk), {
        "title": "Median time to resolve", "kind": "numeric", "start_value": "120",
        "target_value": "60", "unit": "min", "weight": "1"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "Median time to resolve" in html  # in the refreshed list
    oob_form = html[html.index('<div id="kr-new-form" hx-swap-oob="true">'):]
    assert 'name="title"' in oob_form and 'value="Median time to resolve"' not in oob_form


def test_a_tampered_version_is_reported_and_writes_nothing(world_a, alice_client):
    response = alice_client.post(url(world_a, "objective_edit", world_a.objective.pk), {
        "title": "Tampered", "team": world_a.team.pk, "parent": world_a.company_objective.pk,
        "state": "published", "version": "abc"})
    assert "This form is out of date" in response.content.decode()
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).title == "Org A team goal"


def test_refusals_explain_themselves(world_a, alice_client, bob_client):
    page = bob_client.get(url(world_a, "objective_edit", world_a.objective.pk))
    assert page.status_code == 403 and "only of teams you lead" in page.content.decode()
    alice_client.post(url(world_a, "objective_retire", world_a.objective.pk), {"confirm": "yes"})
    page = alice_client.get(url(world_a, "objective_edit", world_a.objective.pk))
    assert page.status_code == 403 and "retired" in page.content.decode()
    missing = alice_client.get("/o/no-such-org/")
    assert missing.status_code == 404 and "Nothing here" in missing.content.decode()


def test_a_key_result_loads_only_its_latest_12_check_ins(world_a, alice_client):
    from datetime import timedelta

    from django.db.models.signals import post_init
    from django.utils import timezone

    kr = KeyResultFactory(objective=world_a.objective, title="Thirty check-ins")
    now = timezone.now()
    for day in range(30):  # values 0..29, oldest first
        CheckInFactory(key_result=kr, value=Decimal(day),
                       created_at=now - timedelta(days=30 - day))
    loaded = []
    post_init.connect(lambda sender, instance, **kw: loaded.append(instance), sender=CheckIn,
                      weak=False, dispatch_uid="count-check-ins")
    try:
        html = alice_client.get(url(world_a, "objective", world_a.objective.pk)).content.decode()
    finally:
        post_init.disconnect(sender=CheckIn, dispatch_uid="count-check-ins")
    assert len(loaded) <= 12 + 1  # this KR's latest 12, the world KR's one
    kr_list = html[html.index('id="key-results"'):]
    section = kr_list[kr_list.index("Thirty check-ins"):]
    points = re.search(r'<polyline points="([^"]+)"', section).group(1).split()
    assert len(points) == 1 + 12  # the start value, then the latest 12 check-ins
    assert "Check-in history (12, latest)" in section
    history = section[section.index("Check-in history"):]
    assert "<strong>29 %" in history and "<strong>18 %" in history
    assert "<strong>17 %" not in history


def test_a_sixth_company_objective_warns(world_a, alice_client):
    for i in range(4):
        ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=world_a.company,
                         title=f"Company goal {i}")
    response = alice_client.post(url(world_a, "objective_new") + f"?cycle={world_a.cycle.pk}", {
        "title": "Yet another goal", "team": world_a.company.pk, "state": "draft",
        "success": "Everyone knows it", "tradeoffs": "Less of the rest"}, follow=True)
    page = response.content.decode()
    assert "now has 7 company objectives" in page  # 2 from the world, 4 here, this one
    assert "What success looks like." in page and "Less of the rest" in page
