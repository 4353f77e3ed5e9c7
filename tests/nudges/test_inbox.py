"""The inbox ("Needs me"): what waits on each person, oldest first, each kind with its action
in place; the same selector feeds the home page, the nav count and the weekly digest."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment.models import SignOffRequest, StatusUpdate
from dependencies import ladder
from dependencies.models import Dependency, RecoveryAction
from nudges import content, inbox
from okrs.models import KeyResult, Objective
from orgs.models import Membership, Team
from tests.conftest import client_for
from tests.factories import (
    ContributionFactory,
    DependencyFactory,
    KeyResultFactory,
    ObjectiveFactory,
    RecascadeFlagFactory,
    StakeholderFactory,
    TeamFactory,
    UserFactory,
    WorkflowFactory,
)
from tests.querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def member(r, user):
    with scope(organization=r.org):
        return Membership.objects.select_related("organization", "user").get(
            organization=r.org, user=user)


def kinds_of(r, user, **kwargs):
    with scope(organization=r.org):
        data = inbox.items_for(member(r, user), **kwargs)
    return {g["kind"].key: g for g in data["groups"]}


def populate(r):
    """One item of every kind but "score", each waiting on a known person."""
    now = timezone.now()
    with scopes_disabled():
        # Ethan: Sales asks Engineering for SSO, unanswered for 15 days (the ladder has
        # reached Liam); Sales asks to count a KR in Engineering's SSO.
        Dependency.objects.filter(pk=r.dependency.pk).update(
            status="requested", created_at=now - timedelta(days=15))
        r.pipeline = KeyResultFactory(objective=r.win, title="Pipeline calls", owner=r.mia)
        r.contribution = ContributionFactory(key_result=r.pipeline, shared=r.sso)
        # Managers: a proposal, a declined request, a team that cannot commit.
        r.proposed = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales,
                                      parent=r.arr, title="Open two new regions",
                                      state=Objective.State.PROPOSED)
        r.declined = DependencyFactory(downstream=r.platform, upstream=r.win, status="declined",
                                       need="A reference customer", response_note="No time")
        r.workflow = WorkflowFactory(objective=r.arr, lead=r.liam,
                                     purpose="Enterprise customers buy from us.")
        StakeholderFactory(workflow=r.workflow, team=r.eng, owner=r.ethan, commitment="cannot",
                           commitment_note="No capacity", escalated_at=now)
        # Alice (admin) signs off; Liam's workflow has a blocker Mia raised.
        SignOffRequest.objects.create(organization=r.org, workflow=r.workflow,
                                      purpose=r.workflow.purpose, requested_by=r.liam)
        r.blocker = StatusUpdate.objects.create(
            organization=r.org, workflow=r.workflow, team=r.sales, author=r.mia,
            text="Legal has not cleared the contract template", is_blocker=True)
        # Mia: the company objective changed above Sales's; a KR of her team ignored.
        r.flag = RecascadeFlagFactory(objective=r.win, source=r.arr)
        r.rep = UserFactory(email="rep@a.test", full_name="Rita Rep")
        r.ignored = KeyResultFactory(objective=r.win, title="Demo calls booked", owner=r.rep)
        KeyResult.objects.filter(pk=r.ignored.pk).update(last_check_in_at=now - timedelta(days=30))
        # Mia's and Ethan's own KRs have no check-in yet: due.
    with scope(organization=r.org):
        ladder.climb(r.org)
    return r


EXPECTED = {
    "ethan": {"request", "contribution", "check_in"},
    "mia": {"recascade", "check_in", "ignored"},
    "liam": {"review", "escalation", "declined", "cannot", "blocker"},
    # Alice: the recovery action of the shared world is hers.
    "alice": {"review", "signoff", "declined", "cannot", "recovery"},
}


def people(r):
    return {"ethan": r.ethan, "mia": r.mia, "liam": r.liam, "alice": r.world.admin.user}


def test_each_kind_waits_on_the_right_person(revenue):
    r = populate(revenue)
    for name, user in people(r).items():
        assert set(kinds_of(r, user)) == EXPECTED[name], name
    ethan = kinds_of(r, r.ethan)
    item = ethan["request"]["items"][0]
    assert item.title == "Sales needs: The feature, in production"
    assert item.url == reverse("dependency", args=[r.org.slug, r.dependency.pk])
    assert [a.do for a in item.actions] == ["commit", "decline"]
    liam = kinds_of(r, r.liam)
    assert liam["escalation"]["items"][0].title.startswith("Sales needs Engineering")
    assert liam["blocker"]["items"][0].title == "Legal has not cleared the contract template"
    mia = kinds_of(r, r.mia)
    assert [i.title for i in mia["ignored"]["items"]] == ["Demo calls booked"]
    assert "Rita Rep" in mia["ignored"]["items"][0].detail


def test_the_viewer_and_another_organization_see_nothing(revenue, charlie, world_b):
    r = populate(revenue)
    assert kinds_of(r, r.world.bob.user) == {}
    with scope(organization=world_b.org):
        m = Membership.objects.select_related("organization", "user").get(user=charlie)
        data = inbox.items_for(m)
    titles = [i.title for g in data["groups"] for i in g["items"]]
    assert not any("Sales" in t or "Legal" in t for t in titles)


def test_items_are_oldest_first_and_bounded_with_a_count(revenue):
    r = revenue
    now = timezone.now()
    with scopes_disabled():
        Dependency.objects.all().delete()
        for i in range(15):
            d = DependencyFactory(downstream=r.deals, upstream=r.sso, status="requested",
                                  need=f"Need {i}")
            Dependency.objects.filter(pk=d.pk).update(created_at=now - timedelta(hours=i))
    group = kinds_of(r, r.ethan, oldest=4)["request"]
    assert group["count"] == 15
    assert [i.title.split(": ")[1] for i in group["items"]] == [
        "Need 14", "Need 13", "Need 12", "Need 11"]
    assert [i.since for i in group["items"]] == sorted(i.since for i in group["items"])


def test_an_item_leaves_when_done_never_by_being_read(revenue):
    r = populate(revenue)
    with scope(organization=r.org):
        from dependencies.models import Notification

        Notification.objects.filter(user=r.ethan).update(read_at=timezone.now())
    assert "contribution" in kinds_of(r, r.ethan)
    with scope(organization=r.org):
        said = inbox.act(member(r, r.ethan), "request", r.dependency.pk, "commit")
    assert said.startswith("Committed to")
    assert "request" not in kinds_of(r, r.ethan)
    # The ladder's escalation of the same request leaves Liam's inbox with it.
    assert "escalation" not in kinds_of(r, r.liam)


@pytest.mark.parametrize("who, kind, do, note, gone", [
    ("ethan", "contribution", "accept", "", "contribution"),
    ("liam", "review", "approve", "", "review"),
    ("liam", "review", "return", "Say which regions", "review"),
    ("alice", "signoff", "sign_off", "", "signoff"),
    ("mia", "recascade", "confirm", "", "recascade"),
    ("liam", "blocker", "resolve", "", "blocker"),
    ("alice", "recovery", "done", "", "recovery"),
])
def test_each_action_in_place_does_it_through_its_service(revenue, who, kind, do, note, gone):
    r = populate(revenue)
    user = people(r)[who]
    pk = kinds_of(r, user)[kind]["items"][0].pk
    client = client_for(user)
    response = client.post(reverse("inbox_act", args=[r.org.slug]),
                           {"kind": kind, "pk": pk, "do": do, "note": note},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "✓" in response.content.decode()
    assert response["HX-Trigger"] == "inbox-changed"
    assert gone not in kinds_of(r, user)


def test_without_javascript_an_action_posts_and_comes_back(revenue):
    r = populate(revenue)
    client = client_for(r.ethan)
    response = client.post(reverse("inbox_act", args=[r.org.slug]),
                           {"kind": "request", "pk": r.dependency.pk, "do": "commit"})
    assert response.status_code == 302 and response["Location"] == reverse(
        "inbox", args=[r.org.slug])
    page = client.get(response["Location"]).content.decode()
    assert "Committed to: The feature, in production." in page
    with scope(organization=r.org):
        assert Dependency.objects.get(pk=r.dependency.pk).status == "committed"


def test_declining_asks_first_and_needs_a_reason(revenue):
    r = populate(revenue)
    client = client_for(r.ethan)
    url = reverse("inbox_act", args=[r.org.slug])
    data = {"kind": "request", "pk": r.dependency.pk, "do": "decline", "note": "No capacity"}
    # Without JavaScript the dialog never asked: the dependency's own page asks.
    response = client.post(url, data)
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("dependency_answer", args=[r.org.slug, r.dependency.pk]) + "?status=declined")
    assert "Decline this request?" in client.get(response["Location"]).content.decode()
    # Confirmed, with no reason: refused, said next to the item, nothing changed.
    response = client.post(url, {**data, "note": "", "confirm": "yes"}, HTTP_HX_REQUEST="true")
    assert response["HX-Retarget"] == f"#inbox-error-request-{r.dependency.pk}"
    assert "Give a reason" in response.content.decode()
    with scope(organization=r.org):
        assert Dependency.objects.get(pk=r.dependency.pk).status == "requested"
    response = client.post(url, {**data, "confirm": "yes"}, HTTP_HX_REQUEST="true")
    assert "Declined: The feature, in production." in response.content.decode()
    with scope(organization=r.org):
        assert Dependency.objects.get(pk=r.dependency.pk).status == "declined"


def test_it_requires_write_access(revenue, bob_client):
    r = populate(revenue)
    response = bob_client.post(reverse("inbox_act", args=[r.org.slug]),
                               {"kind": "request", "pk": r.dependency.pk, "do": "commit"})
    assert response.status_code == 403
    with scope(organization=r.org):
        assert Dependency.objects.get(pk=r.dependency.pk).status == "requested"


def test_it_checks_organization(revenue, world_b):
    r = populate(revenue)
    client = client_for(r.ethan)
    url = reverse("inbox_act", args=[r.org.slug])
    with scopes_disabled():
        foreign = DependencyFactory(downstream=world_b.key_result,
                                    upstream=world_b.other_objective, status="requested")
        action = RecoveryAction.objects.filter(organization=world_b.org).first()
    for kind, pk, do in (("request", foreign.pk, "commit"), ("recovery", action.pk, "done"),
                         ("request", foreign.pk, "decline"), ("nonsense", 1, "x")):
        assert client.post(url, {"kind": kind, "pk": pk, "do": do}).status_code == 404
    with scopes_disabled():
        assert Dependency.objects.get(pk=foreign.pk).status == "requested"


def test_the_inbox_page_groups_by_kind_and_shows_more_a_page_at_a_time(revenue):
    r = revenue
    now = timezone.now()
    with scopes_disabled():
        Dependency.objects.all().delete()
        for i in range(inbox.OLDEST + 3):
            d = DependencyFactory(downstream=r.deals, upstream=r.sso, status="requested",
                                  need=f"Need {i:02}")
            Dependency.objects.filter(pk=d.pk).update(created_at=now - timedelta(hours=i))
    client = client_for(r.ethan)
    url = reverse("inbox", args=[r.org.slug])
    page = client.get(url).content.decode()
    assert "Dependency requests to answer" in page and "Key results due for a check-in" in page
    assert "Need 12" in page and "Need 02" not in page
    assert f"Show all {inbox.OLDEST + 3}" in page
    one_kind = client.get(url, {"kind": "request"}).content.decode()
    assert "Key results due for a check-in" not in one_kind and "Show more" in one_kind
    more = client.get(url, {"kind": "request", "page": 2}, HTTP_HX_REQUEST="true")
    html = more.content.decode()
    assert "Need 02" in html and "Need 00" in html and "Need 12" not in html
    assert "<html" not in html and "Show more" not in html


def test_an_empty_inbox_says_what_comes_there(revenue):
    page = client_for(revenue.liam).get(reverse("inbox", args=[revenue.org.slug]))
    assert "Nothing waits for you" in page.content.decode()


def test_needs_me_on_the_home_page_and_the_count_in_the_nav(revenue):
    r = populate(revenue)
    html = client_for(r.liam).get(reverse("home", args=[r.org.slug])).content.decode()
    assert 'data-testid="needs-me"' in html
    total = sum(g["count"] for g in kinds_of(r, r.liam).values())
    assert f'data-testid="inbox-count">{total}<' in html
    assert "Proposed objectives to review: 1" in html
    # The oldest few load after the page: the oldest of all first, the request that reached
    # Liam on day 14; the fragment asks for nothing more.
    assert '?oldest=3" hx-trigger="load"' in html
    fragment = client_for(r.liam).get(reverse("inbox", args=[r.org.slug]), {"oldest": 3},
                                      HTTP_HX_REQUEST="true").content.decode()
    assert fragment.index("Sales needs Engineering") < fragment.index("Open two new regions")
    assert fragment.count("<li>") == 3 and "hx-get" not in fragment


def test_the_digest_and_the_inbox_agree(revenue):
    r = populate(revenue)
    for name, user in people(r).items():
        with scope(organization=r.org):
            m = member(r, user)
            digest = content.build(m)
            data = inbox.items_for(m)
        from django.conf import settings

        expected = [(i.label, i.title, settings.SITE_URL + i.url)
                    for g in data["groups"] if g["kind"].key in inbox.DIGEST_DECISIONS
                    for i in g["items"]]
        assert [(x["kind"], x["title"], x["url"]) for x in digest.decisions] == expected, name
        due = [i.title for g in data["groups"] if g["kind"].key == "check_in"
               for i in g["items"]]
        assert [k["title"] for k in digest.check_ins] == due, name
        assert digest.decisions or digest.check_ins, name


def test_check_ins_due_follow_the_cadence_inherited_from_the_team_above(revenue):
    r = revenue
    now = timezone.now()
    with scopes_disabled():
        Team.objects.filter(pk=r.sales.pk).update(checkin_cadence="monthly")
        field = TeamFactory(organization=r.org, name="Field sales", parent=r.sales)
        inside = TeamFactory(organization=r.org, name="Inside sales", parent=r.sales,
                             checkin_cadence="weekly")
        krs = {}
        for team in (r.sales, field, inside):
            krs[team.name] = KeyResultFactory(objective=r.win, owner_team=team, owner=r.mia,
                                              title=f"{team.name} KR")
        KeyResult.objects.filter(pk=r.deals.pk).delete()
        KeyResult.objects.filter(organization=r.org, owner=r.mia).update(
            last_check_in_at=now - timedelta(days=10))
    titles = {i.title for i in kinds_of(r, r.mia)["check_in"]["items"]}
    # Monthly for Sales and Field sales (inherited), weekly where Inside sales set its own.
    assert titles == {"Inside sales KR"}
    with scope(organization=r.org):
        ctx = inbox.Context(member(r, r.mia))
    assert ctx.cadence[field.pk] == "monthly" and ctx.cadence[inside.pk] == "weekly"
    assert ctx.cadence[r.eng.pk] == "weekly"  # nobody above set one
    later = kinds_of(r, r.mia, now=now + timedelta(days=21))["check_in"]["items"]
    assert {i.title for i in later} == {"Sales KR", "Field sales KR", "Inside sales KR"}
    client = client_for(r.mia)
    for team, said in ((field, "Check-ins monthly (as Sales)"), (inside, "Check-ins weekly<"),
                       (r.eng, "Check-ins weekly<")):
        html = client.get(reverse("team", args=[r.org.slug, team.pk])).content.decode()
        assert said in html.replace("</span>", "<"), team.name


@pytest.mark.parametrize("cadence, days, shown", [
    ("weekly", 27, False), ("weekly", 28, True),
    ("biweekly", 55, False), ("biweekly", 56, True),
    ("monthly", 119, False), ("monthly", 120, True),
])
def test_three_ignored_reminders_bring_a_kr_to_the_team_lead(revenue, cadence, days, shown):
    """Due one period after the last check-in, then three more periods with no check-in."""
    r = revenue
    now = timezone.now()
    with scopes_disabled():
        Team.objects.filter(pk=r.sales.pk).update(checkin_cadence=cadence)
        rep = UserFactory(full_name="Rita Rep")
        kr = KeyResultFactory(objective=r.win, owner=rep, title="Demo calls booked")
        KeyResult.objects.filter(pk=kr.pk).update(last_check_in_at=now - timedelta(days=days))
    assert ("ignored" in kinds_of(r, r.mia, now=now)) is shown


def test_key_results_to_score_in_the_last_two_weeks_of_the_cycle(revenue):
    r = revenue
    with scopes_disabled():
        end = r.cycle.end_date
    today = timezone.now()
    before = today + timedelta(days=(end - timezone.localdate()).days - 15)
    within = today + timedelta(days=(end - timezone.localdate()).days - 13)
    assert "score" not in kinds_of(r, r.mia, now=before)
    items = kinds_of(r, r.mia, now=within)["score"]["items"]
    assert [i.title for i in items] == ["Close 3 enterprise deals"]
    with scopes_disabled():
        KeyResult.objects.filter(pk=r.deals.pk).update(score=0.7)
    assert "score" not in kinds_of(r, r.mia, now=within)


def test_queries_do_not_grow_with_the_items(revenue, django_assert_max_num_queries):
    r = populate(revenue)
    m = member(r, r.liam)

    def run():
        with scope(organization=r.org):
            return inbox.items_for(m)

    small = count_queries(run)
    now = timezone.now()
    with scopes_disabled():
        for i in range(30):
            ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales, parent=r.arr,
                             state=Objective.State.PROPOSED)
            d = DependencyFactory(downstream=r.deals, upstream=r.sso, status="requested")
            Dependency.objects.filter(pk=d.pk).update(created_at=now - timedelta(days=15))
            StatusUpdate.objects.create(organization=r.org, workflow=r.workflow, team=r.sales,
                                        author=r.mia, text=f"Blocked {i}", is_blocker=True)
    with scope(organization=r.org):
        ladder.climb(r.org)
    # The teams, the counts, one per kind an alignment lead who leads no team can be asked
    # for (review, escalation, declined, cannot commit, blocker, recovery, check-in, failing
    # data source).
    with django_assert_max_num_queries(10):
        large = count_queries(run)
    assert large[0]["total"] > small[0]["total"] + 60
    assert_same_queries(small, large)


def test_the_nav_count_costs_two_queries(revenue, django_assert_num_queries):
    r = populate(revenue)
    m = member(r, r.liam)
    with scope(organization=r.org), django_assert_num_queries(2):
        total = inbox.total_for(m)
    assert total == sum(g["count"] for g in kinds_of(r, r.liam).values()) > 0


def test_the_inbox_page_queries_do_not_grow(revenue, django_assert_max_num_queries):
    r = populate(revenue)
    client = client_for(r.liam)
    url = reverse("inbox", args=[r.org.slug])
    small = count_queries(lambda: client.get(url))
    with scopes_disabled():
        for _ in range(30):
            ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales, parent=r.arr,
                             state=Objective.State.PROPOSED)
    with django_assert_max_num_queries(16):
        large = count_queries(lambda: client.get(url))
    assert large[0].status_code == 200
    assert_same_queries(small, large)
