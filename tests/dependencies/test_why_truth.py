"""A "Why?" that tells the truth, on the demo's chains: an Engineering slip (the SSO key result,
Engineering's, on the Sales objective) makes Sales at risk, never off track; the Why page names
SSO and not Sales' own key result; the three reasons are kept apart everywhere."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dependencies import network
from dependencies.models import Notification
from nudges import content
from okrs import services
from okrs.models import CheckIn, KeyResult, Objective
from orgs.models import Membership, Organization
from tests.factories import DependencyFactory, KeyResultFactory, ObjectiveFactory

SALES = "Win more enterprise customers"
SSO = "SSO available to enterprise prospects"
DEALS = "Close 12 enterprise deals"
DEAL_SIZE = "Raise average deal size from $40k to $55k"


class Demo:
    def __init__(self):
        with scopes_disabled():
            self.org = Organization.objects.get(slug="northwind")
        self.scope = scope(organization=self.org)
        self.scope.__enter__()
        self.sales = Objective.objects.get(title=SALES)
        self.cycle = self.sales.cycle
        network.run(self.cycle)

    def member(self, name):
        return Membership.objects.get(user__email=f"{name}@northwind.example")

    def kr(self, title):
        return KeyResult.objects.get(title=title, objective__cycle=self.cycle)

    def slip_sso(self):
        services.record_check_in(membership=self.member("ethan"), key_result=self.kr(SSO),
                                 confidence="off_track", is_done=False,
                                 note="The identity vendor slipped three weeks")
        network.run(self.cycle)
        self.sales.refresh_from_db()

    def client(self, name):
        c = Client()
        c.force_login(self.member(name).user)
        return c


@pytest.fixture
def demo(django_capture_on_commit_callbacks):
    call_command("seed_demo", stdout=io.StringIO())
    d = Demo()
    yield d
    d.scope.__exit__(None, None, None)


def titles(path):
    return [n.get("title") for n in path]


@pytest.mark.django_db
def test_an_engineering_slip_makes_sales_at_risk_never_off_track(demo):
    demo.slip_sso()
    assert demo.sales.effective_health == "at_risk"
    roots = [path[0]["title"] for path in demo.sales.risk_causes]
    assert SSO in roots
    assert DEAL_SIZE not in [t for path in demo.sales.risk_causes for t in titles(path)]


@pytest.mark.django_db
def test_each_stored_cause_says_which_reason_it_is(demo):
    demo.slip_sso()
    reasons = {path[0]["reason"] for path in demo.sales.risk_causes}
    assert reasons <= {"rollup", "dependency"} and reasons
    deals = demo.kr(DEALS)
    [path] = deals.risk_causes
    assert titles(path) == [SSO] and path[0]["reason"] == "dependency"


@pytest.mark.django_db
def test_the_why_page_names_sso_and_keeps_the_three_reasons_apart(demo):
    demo.slip_sso()
    url = reverse("why_at_risk", args=["northwind", "o", demo.sales.pk])
    html = demo.client("mia").get(url).content.decode()
    assert "Why is “Win more enterprise customers” at risk?" in html
    own = section(html, "own")
    rollup = section(html, "rollup")
    upstream = section(html, "upstream")
    # 1. Its own check-ins and pace: Sales' own key results, and they are not the reason.
    assert "Sales’ own key results are on track taken together" in own
    assert DEAL_SIZE in own and SSO not in own
    # 2. Key results and aligned objectives, naming the team that owns another team's KR.
    assert f"“{SSO}”, Engineering’s key result, is off track." in rollup
    assert DEAL_SIZE not in rollup
    # 3. Upstream dependencies: at risk, never off track.
    assert f"“{DEALS}” depends on “{SSO}” (Engineering), which is off track." in upstream
    assert DEAL_SIZE not in upstream
    assert "its own check-ins and pace are not the reason" not in html.lower()


@pytest.mark.django_db
def test_the_why_page_of_the_dependent_key_result(demo):
    demo.slip_sso()
    deals = demo.kr(DEALS)
    url = reverse("why_at_risk", args=["northwind", "k", deals.pk])
    html = demo.client("mia").get(url).content.decode()
    assert "Why is “Close 12 enterprise deals” at risk?" in html
    assert "Its own check-ins and pace say on track." in section(html, "own")
    assert "Nothing rolls up into it." in section(html, "rollup")
    assert (f"It depends on “{SSO}” (Engineering), which is off track: that makes it at risk, "
            "not off track.") in section(html, "upstream")


@pytest.mark.django_db
def test_without_a_slip_the_why_page_says_the_health_is_its_own(demo):
    url = reverse("why_at_risk", args=["northwind", "o", demo.sales.pk])
    html = demo.client("mia").get(url).content.decode()
    assert "Nothing upstream is at risk." in section(html, "upstream")


@pytest.mark.django_db
def test_a_dependency_between_two_key_results_of_one_objective_shows_once(demo):
    url = reverse("objective", args=["northwind", demo.sales.pk])
    html = demo.client("mia").get(url).content.decode()
    network_part = html[html.index('id="network"'):]
    assert network_part.count("SAML single sign-on live for the three pilot prospects") == 1


@pytest.mark.django_db
def test_alerts_and_the_digest_word_the_reason(demo):
    demo.slip_sso()
    mia = demo.member("mia")
    notes = Notification.objects.filter(user=mia.user, title=SALES)
    assert notes.exists()
    html = demo.client("mia").get(reverse("notifications", args=["northwind"])).content.decode()
    assert f"Upstream dependency: “{DEALS}” depends on “{SSO}” (Engineering), which is off track." \
        in html or f"Key result of another team: “{SSO}” (Engineering) is off track." in html
    assert "because of something upstream" not in html
    digest = content.build(mia)
    lines = [r["reason"] for r in digest.upstream]
    assert f"Key result of another team: “{SSO}” (Engineering) is off track." in lines
    assert f"Upstream dependency: “{SSO}” (Engineering) is off track." in lines


def section(html, name):
    start = html.index(f'data-reason="{name}"')
    end = html.index("</section>", start)
    return html[start:end]


@pytest.mark.django_db
def test_a_stale_key_result_shows_stale_instead_of_a_health(demo):
    runbooks = demo.kr("Runbooks for every alert")
    assert runbooks.last_check_in_at < timezone.now() - timedelta(days=14)
    network.run(demo.cycle)
    runbooks.refresh_from_db()
    assert runbooks.effective_health == ""  # unknown, not its last reported health
    toil = runbooks.objective
    html = demo.client("ava").get(reverse("objective", args=["northwind", toil.pk])).content
    html = html.decode()
    row = html[html.index(f'id="kr-{runbooks.pk}"'):]
    row = row[:row.index("</li>")]
    health = row[row.index('data-testid="kr-health"'):]
    health = health[:health.index("</span></span>")]
    assert "Stale" in health and "On track" not in health and "At risk" not in health
    assert CheckIn.objects.filter(key_result=runbooks).exists()


def reason_block(html, name):
    start = html.index(f'data-reason="{name}"')
    return html[start:html.index("</div>", start)]


@pytest.mark.django_db
def test_the_objective_page_keeps_the_three_reasons_apart(demo):
    demo.slip_sso()
    html = demo.client("mia").get(reverse("objective", args=["northwind", demo.sales.pk]))
    html = html.content.decode()
    assert "Why this health" in html
    assert "Sales’ own key results are on track taken together." in reason_block(html, "own")
    assert f"“{SSO}”, Engineering’s key result, is off track." in reason_block(html, "rollup")
    upstream = reason_block(html, "upstream")
    assert f"“{DEALS}” depends on “{SSO}” (Engineering), which is off track." in upstream
    assert "An upstream slip makes it at risk, never off track." in upstream


@pytest.mark.django_db
def test_home_and_tree_never_show_a_health_beside_stale(demo):
    # "Pay down on-call toil": two fresh KRs on track, "Runbooks for every alert" stale. The
    # stale one counts as unknown: the objective is on track, with no "Stale" beside it.
    ethan = demo.client("ethan")
    for name in ("home", "tree"):
        html = ethan.get(reverse(name, args=["northwind"])).content.decode()
        row = html[html.index("Pay down on-call toil"):]
        health = row[row.index('<span class="health">'):]
        health = health[:health.index("</span></span>")]
        assert "On track" in health and "Stale" not in health, name


@pytest.mark.django_db
def test_the_marketing_chain_is_worded_as_a_dependency(demo):
    # Marketing's conversion KR needs the Web App's Core Web Vitals, which are at risk.
    conversion = demo.kr("Website conversion from 1.8% to 3%")
    vitals = "Core Web Vitals pass rate from 55% to 90%"
    mia = demo.client("ava")
    html = mia.get(reverse("why_at_risk", args=["northwind", "k", conversion.pk])).content
    html = html.decode()
    assert (f"It depends on “{vitals}” (Web App), which is at risk: that makes it at risk."
            in section(html, "upstream"))
    assert "Its own check-ins and pace say on track." in section(html, "own")
    assert f"Upstream dependency: “{vitals}” (Web App) is at risk." in html
    objective = conversion.objective
    html = mia.get(reverse("why_at_risk", args=["northwind", "o", objective.pk])).content
    html = html.decode()
    assert "Marketing’s own key results" in section(html, "own")
    assert (f"“Website conversion from 1.8% to 3%” depends on “{vitals}” (Web App), which is "
            "at risk.") in section(html, "upstream")
    assert "Nothing else rolls up into it" in section(html, "rollup")


@pytest.mark.django_db
def test_the_company_objective_names_its_aligned_objective_at_risk(demo):
    company = Objective.objects.get(title="Become the product customers recommend first")
    html = demo.client("ava").get(reverse("why_at_risk", args=["northwind", "o", company.pk]))
    rollup = section(html.content.decode(), "rollup")
    assert ("Aligned objective “Make the platform fast and dependable” (Engineering) is at risk."
            in rollup)


@pytest.mark.django_db
def test_the_shared_key_result_names_the_contributor_and_its_team(demo):
    demo.slip_sso()
    shared = demo.kr("Win 12 new enterprise customers")
    html = demo.client("ava").get(reverse("why_at_risk", args=["northwind", "k", shared.pk]))
    rollup = section(html.content.decode(), "rollup")
    assert f"“{DEALS}” (Sales) feeds it and is at risk." in rollup


@pytest.mark.django_db
def test_the_why_page_costs_the_same_with_more_aligned_objectives_and_dependencies(
        demo, django_assert_max_num_queries):
    url = reverse("why_at_risk", args=["northwind", "o", demo.sales.pk])
    client = demo.client("mia")
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    with scopes_disabled():
        for i in range(15):
            child = ObjectiveFactory(organization=demo.org, cycle=demo.cycle,
                                     team=demo.sales.team, parent=demo.sales,
                                     title=f"Region {i}", effective_health="at_risk")
            up = KeyResultFactory(objective=child, title=f"Upstream {i}",
                                  effective_health="off_track")
            DependencyFactory(downstream=demo.kr(DEALS), upstream=up)
    with django_assert_max_num_queries(len(small.captured_queries)):
        html = client.get(url).content.decode()
    assert html.count("Aligned objective “Region") == 10
    assert html.count("depends on “Upstream") == 10
    assert "And 5 more dependencies at risk" in html
    assert "And 5 more aligned objectives at risk or off track." in html


@pytest.mark.django_db
def test_the_network_page_words_each_cause_with_its_reason(demo):
    demo.slip_sso()
    html = demo.client("mia").get(reverse("network", args=["northwind"])).content.decode()
    risk = html[html.index("At risk because of something else"):]
    assert f"Upstream dependency: “{SSO}” (Engineering) is off track." in risk
    assert "Root cause:" not in risk
