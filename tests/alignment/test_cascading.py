"""Review and publish, re-cascading, and the alignment views."""

import re
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django_scopes import scope

from alignment import cascade, netmap
from alignment.models import RecascadeFlag
from alignment.views_cascade import matrix_data, network_data
from okrs import services as okr_services
from okrs.models import KeyResult, Objective
from orgs.models import Role
from tests.conftest import client_for
from tests.factories import (
    DependencyFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    ObjectiveShareFactory,
    TeamFactory,
)
from tests.querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def fresh(o):
    with scope(organization=o.organization):
        return type(o).objects.get(pk=o.pk)


def recompute(r):
    """What the worker does after a change: factories write no dirty flag, so run it here."""
    from dependencies import network

    with scope(organization=r.org):
        network.run(r.cycle)


def draft(r, title="Give enterprise buyers single sign-on"):
    return ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, parent=r.arr,
                            title=title, state="draft")


def test_review_flow_states_comments_and_publish(revenue):
    r = revenue
    o = draft(r)
    with scope(organization=r.org):
        with pytest.raises(PermissionDenied):
            cascade.submit_for_review(membership=r.mia_m, objective=o)  # not her team
        cascade.submit_for_review(membership=r.ethan_m, objective=o, note="First try")
        assert fresh(o).state == "proposed"
        with pytest.raises(PermissionDenied):
            cascade.approve(membership=r.ethan_m, objective=fresh(o))
        with pytest.raises(ValidationError, match="Say what should change"):
            cascade.request_changes(membership=r.liam_m, objective=fresh(o), text=" ")
        cascade.request_changes(membership=r.liam_m, objective=fresh(o),
                                text="Say what SSO unlocks for Sales")
        assert fresh(o).state == "draft"
        cascade.comment(membership=r.ethan_m, objective=fresh(o), text="Rewritten")
        cascade.submit_for_review(membership=r.ethan_m, objective=fresh(o))
        cascade.approve(membership=r.liam_m, objective=fresh(o))
        assert fresh(o).state == "approved"
        kinds = list(fresh(o).review_comments.values_list("kind", flat=True))
        assert kinds == ["submitted", "changes", "comment", "submitted", "approved"]
        assert cascade.publish_cycle(membership=r.liam_m, cycle=r.cycle) == 1
        assert fresh(o).state == "published"
        with pytest.raises(PermissionDenied):
            cascade.publish_cycle(membership=r.ethan_m, cycle=r.cycle)


def test_approval_only_through_the_review_queue(revenue):
    r = revenue
    o = draft(r)
    with scope(organization=r.org), pytest.raises(ValidationError, match="review queue"):
        okr_services.update_objective(membership=r.liam_m, objective=o, version=o.version,
                                      title=o.title, why="", team=r.eng, parent=r.arr,
                                      is_local=False, state="approved")


def test_the_queue_shows_findings_and_the_team_sees_the_comment(revenue):
    r = revenue
    o = draft(r, title="Reach $12M ARR")  # copies its parent's title
    recompute(r)
    ethan, liam = client_for(r.ethan), client_for(r.liam)
    ethan.post(reverse("review_act", args=[r.org.slug, o.pk]), {"action": "submit"})
    queue = liam.get(reverse("review", args=[r.org.slug])).content.decode()
    assert "repeats its parent" in queue
    liam.post(reverse("review_act", args=[r.org.slug, o.pk]),
              {"action": "changes", "text": "Say how Engineering helps", "next": "queue"})
    page = ethan.get(reverse("objective", args=[r.org.slug, o.pk])).content.decode()
    assert "Say how Engineering helps" in page and "Propose for review" in page


def test_editing_a_company_objective_flags_exactly_its_descendants(revenue):
    r = revenue
    grandchild = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng,
                                  parent=r.platform, title="SSO for SAML providers")
    retired = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, parent=r.arr,
                               state="retired")
    elsewhere = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                                 title="Delight customers")
    child_elsewhere = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales,
                                       parent=elsewhere)
    with scope(organization=r.org):
        arr = fresh(r.arr)
        okr_services.update_objective(membership=r.liam_m, objective=arr, version=arr.version,
                                      title="Reach $14M ARR", why=arr.why, team=arr.team,
                                      parent=None, is_local=False, state=arr.state)
        flagged = set(RecascadeFlag.objects.filter(source=r.arr).values_list("objective_id",
                                                                             flat=True))
    assert flagged == {r.win.pk, r.platform.pk, grandchild.pk}
    assert retired.pk not in flagged and child_elsewhere.pk not in flagged
    # A change that is not in substance (same title and why) flags nothing more.
    with scope(organization=r.org):
        arr = fresh(r.arr)
        okr_services.update_objective(membership=r.liam_m, objective=arr, version=arr.version,
                                      title=arr.title, why=arr.why, team=arr.team, parent=None,
                                      is_local=False, state=arr.state)
        assert RecascadeFlag.objects.filter(source=r.arr).count() == 3


def test_a_key_result_target_change_and_a_retirement_flag_too(revenue):
    r = revenue
    kr = KeyResultFactory(objective=r.arr, title="New ARR", target_value=Decimal(12))
    with scope(organization=r.org):
        kr = KeyResult.objects.select_related("objective__cycle", "objective__team").get(
            pk=kr.pk)
        okr_services.update_key_result(membership=r.liam_m, key_result=kr, version=kr.version,
                                       title=kr.title, start_value=Decimal(0),
                                       target_value=Decimal(14), unit="", owner_team=kr.owner_team,
                                       owner=None, weight=kr.weight)
        changes = set(RecascadeFlag.objects.filter(source=r.arr).values_list("change",
                                                                             flat=True))
        assert changes == {"The key result “New ARR” of “Reach $12M ARR” now targets 14 "
                           "instead of 12."}
        RecascadeFlag.objects.all().delete()
        okr_services.retire_objective(membership=r.liam_m, objective=fresh(r.arr))
        assert RecascadeFlag.objects.filter(change="“Reach $12M ARR” was retired.").count() == 2


def test_the_three_responses_and_the_progress(revenue):
    r = revenue
    other = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                             title="Expand to Europe")
    third = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales, parent=r.arr,
                             title="Train partners")
    with scope(organization=r.org):
        arr = fresh(r.arr)
        okr_services.update_objective(membership=r.liam_m, objective=arr, version=arr.version,
                                      title="Reach $14M ARR", why="", team=arr.team,
                                      parent=None, is_local=False, state=arr.state)
        flags = RecascadeFlag.objects.filter(source=r.arr).select_related(
            "objective__team", "objective__cycle", "objective__theme")
        flag = {f.objective_id: f for f in flags}
        with pytest.raises(PermissionDenied):
            cascade.confirm_fits(membership=r.ethan_m, flag=flag[r.win.pk])
        cascade.confirm_fits(membership=r.mia_m, flag=flag[r.win.pk])
        cascade.realign(membership=r.ethan_m, flag=flag[r.platform.pk], parent=other)
        cascade.retire(membership=r.mia_m, flag=flag[third.pk])
        assert fresh(r.platform).parent_id == other.pk
        assert fresh(third).state == "retired"
        with pytest.raises(ValidationError):
            cascade.confirm_fits(membership=r.mia_m, flag=fresh(flag[r.win.pk]))
        [row] = [p for p in cascade.progress(r.org, r.cycle) if p["source"].pk == r.arr.pk]
    assert (row["confirmed"], row["realigned"], row["retired"], row["open"]) == (1, 1, 1, 0)
    page = client_for(r.liam).get(reverse("recascade", args=[r.org.slug])).content.decode()
    assert "Reach $12M ARR” changed its title" in page


def test_the_matrix_counts_and_marks_gaps(revenue):
    r = revenue
    empty_column = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                                    title="Expand to Europe")
    ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales, parent=r.win)
    idle = TeamFactory(organization=r.org, name="Legal")
    with scope(organization=r.org):
        m = matrix_data(r.org, r.cycle)
    titles = [c["title"] for c in m["columns"]]
    arr_i = titles.index("Reach $12M ARR")
    rows = {row["team"].name: row for row in m["rows"]}
    assert rows["Sales"]["cells"][arr_i]["count"] == 2
    assert rows["Engineering"]["cells"][arr_i]["count"] == 1
    assert rows["Legal"]["empty"] and idle.pk
    assert m["columns"][titles.index("Expand to Europe")]["empty"] and empty_column.pk


def test_the_network_map_draws_every_kind_of_link_and_escapes(revenue):
    r = revenue
    marketing = TeamFactory(organization=r.org, name="Marketing <&> Co")
    lonely = TeamFactory(organization=r.org, name="Facilities")
    ObjectiveShareFactory(objective=r.win, team=marketing, kind="whole")
    KeyResultFactory(objective=r.win, owner_team=r.eng, title="Security review")
    shared = KeyResultFactory(objective=r.platform, title="Enterprise logos")
    KeyResultFactory(objective=r.win, title="Logos signed", feeds=shared)
    with scope(organization=r.org):
        nodes, edges = network_data(r.org, r.cycle, r.org.slug)
    kinds = {(e.kind, e.a, e.b) for e in edges}
    assert ("whole", min(r.sales.pk, marketing.pk), max(r.sales.pk, marketing.pk)) in kinds
    assert ("objective", min(r.sales.pk, r.eng.pk), max(r.sales.pk, r.eng.pk)) in kinds
    assert ("key_result", min(r.sales.pk, r.eng.pk), max(r.sales.pk, r.eng.pk)) in kinds
    assert ("dependency", r.eng.pk, r.sales.pk) in kinds  # from the provider to who depends
    assert {n.name: n.links for n in nodes}["Facilities"] == 0 and lonely.pk
    svg = netmap.render(nodes, edges)
    assert "Marketing &lt;&amp;&gt; Co" in svg and "<&>" not in svg
    assert len(re.findall(r'class="team ', svg)) == len(nodes)
    assert 'class="team health-none lonely"' in svg


def test_thirty_teams_fit_on_the_map():
    nodes = [netmap.Node(i, f"Team {i}", f"/t/{i}") for i in range(30)]
    pos = list(netmap.layout(nodes).values())
    closest = min(((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5
                  for i, a in enumerate(pos) for b in pos[i + 1:])
    assert closest > 4 * netmap.NODE_R


def test_report_matrix_and_map_keep_their_query_count(revenue):
    r = revenue
    liam = client_for(r.liam)

    def pages():
        for name in ("report", "matrix", "network_map", "review", "home"):
            assert liam.get(reverse(name, args=[r.org.slug])).status_code == 200

    small = count_queries(pages)
    for i in range(10):
        team = TeamFactory(organization=r.org, name=f"Squad {i}")
        o = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=team, parent=r.arr,
                             state="proposed")
        kr = KeyResultFactory(objective=o, owner_team=r.eng)
        ObjectiveShareFactory(objective=o, team=r.sales)
        DependencyFactory(downstream=kr, upstream=r.deals, status="requested")
    large = count_queries(pages)
    assert_same_queries(small, large)


def test_settings_are_for_managers_and_switch_the_model(revenue):
    r = revenue
    url = reverse("alignment_settings", args=[r.org.slug])
    assert client_for(r.mia).get(url).status_code == 403
    liam = client_for(r.liam)
    liam.post(url, {"action": "theme", "name": "Enterprise", "description": "Bigger customers"})
    extra = {"timezone": "UTC", "digest_weekday": 0, "digest_hour": 9}
    liam.post(url, {"action": "settings", "alignment_model": "thematic", "local_share_limit": 30,
                    "escalate_after_days": 3, **extra})
    r.org.refresh_from_db()
    assert (r.org.alignment_model, r.org.local_share_limit, r.org.escalate_after_days) == (
        "thematic", 30, 3)
    bad = liam.post(url, {"action": "settings", "alignment_model": "flexible",
                          "local_share_limit": 140, "escalate_after_days": 3, **extra,
                          "timezone": "Mars/Olympus"})
    assert bad.status_code == 200 and "less than or equal to 100" in bad.content.decode()
    assert "Unknown time zone" in bad.content.decode()
    # Thematic: a team objective picks a theme instead of a parent.
    with scope(organization=r.org):
        from orgs.models import Theme

        theme = Theme.objects.get(name="Enterprise")
        with pytest.raises(ValidationError, match="theme"):
            okr_services.create_objective(membership=r.mia_m, cycle=r.cycle, team=r.sales,
                                          title="Win banks")
        o = okr_services.create_objective(membership=r.mia_m, cycle=r.cycle, team=r.sales,
                                          title="Win banks", theme=theme)
    assert o.theme == theme
    viewer = MembershipFactory(organization=r.org, role=Role.VIEWER)
    assert client_for(viewer.user).post(url, {"action": "theme", "name": "x"}).status_code == 403
    assert Objective.objects  # noqa: B018 - keep the import honest


def test_the_tree_shows_finding_badges(revenue):
    r = revenue
    ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                     title="Grow revenue by 30%")  # a metric, and nobody contributes
    recompute(r)
    html = client_for(r.liam).get(reverse("tree", args=[r.org.slug])).content.decode()
    assert re.search(r'Grow revenue by 30%.*?2 findings', html, re.S)


def _flags_after_a_change(r):
    with scope(organization=r.org):
        arr = fresh(r.arr)
        okr_services.update_objective(membership=r.liam_m, objective=arr, version=arr.version,
                                      title="Reach $14M ARR", why="", team=arr.team,
                                      parent=None, is_local=False, state=arr.state)
        return {f.objective_id: f for f in RecascadeFlag.objects.filter(source=r.arr)
                .select_related("objective__team", "objective__cycle", "objective__theme")}


def test_re_aligning_to_the_parent_it_has_is_refused_and_writes_nothing(revenue):
    r = revenue
    flag = _flags_after_a_change(r)[r.platform.pk]
    version = fresh(r.platform).version
    with scope(organization=r.org):
        with pytest.raises(ValidationError) as refused:
            cascade.realign(membership=r.ethan_m, flag=flag, parent=fresh(r.arr))
    assert refused.value.message_dict == {"parent": ["That is where it is already."]}
    platform = fresh(r.platform)
    assert (platform.parent_id, platform.version) == (r.arr.pk, version)
    flag = fresh(flag)
    assert (flag.resolution, flag.note, flag.resolved_at) == ("open", "", None)


def test_the_re_cascade_page_refuses_the_same_parent_and_does_not_offer_it(revenue):
    r = revenue
    other = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                             title="Expand to Europe")
    flag = _flags_after_a_change(r)[r.platform.pk]
    ethan = client_for(r.ethan)
    page = ethan.get(reverse("recascade", args=[r.org.slug])).content.decode()
    options = re.search(rf'<select id="parent-{flag.pk}".*?</select>', page, re.S).group(0)
    assert "Expand to Europe" in options and "Reach $14M ARR" not in options
    response = ethan.post(reverse("recascade_act", args=[r.org.slug, flag.pk]),
                          {"action": "realign", "parent": r.arr.pk}, follow=True)
    assert "That is where it is already." in response.content.decode()
    assert fresh(flag).resolution == "open"
    with scope(organization=r.org):
        assert not RecascadeFlag.objects.filter(resolution="realigned").exists()
    assert other.pk  # still offered: a real re-align works
    ethan.post(reverse("recascade_act", args=[r.org.slug, flag.pk]),
               {"action": "realign", "parent": other.pk})
    assert fresh(r.platform).parent_id == other.pk and fresh(flag).resolution == "realigned"
