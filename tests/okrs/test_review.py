"""The cycle review: its numbers (okrs/review.py), its diagnostic, the page, its downloads, and
that it scores teams, never a person."""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dependencies.models import DependencyEvent
from okrs import review
from okrs.models import Objective, ObjectiveClose
from orgs.models import Cycle, Team
from retros.models import Improvement, Retrospective

from ..factories import (
    CheckInFactory,
    CycleFactory,
    DependencyFactory,
    KeyResultFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
    WorkflowFactory,
)
from ..querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def objective(world, *, team=None, score=None, commitment="committed", cycle=None, **kw):
    return ObjectiveFactory(organization=world.org, cycle=cycle or world.cycle,
                            team=team or world.team, score=score, commitment=commitment, **kw)


def close(o, outcome, learned="", differently="", closed_by=None):
    with scopes_disabled():
        return ObjectiveClose.objects.create(
            organization=o.organization, objective=o, outcome=outcome, learned=learned,
            differently=differently, next_step="drop", closed_at=timezone.now(),
            closed_by=closed_by)


def improvement(workflow, title, status, owner):
    with scopes_disabled():
        retro, _ = Retrospective.objects.get_or_create(organization=workflow.organization,
                                                       workflow=workflow)
        return Improvement.objects.create(organization=workflow.organization,
                                          retrospective=retro, title=title, status=status,
                                          owner=owner)


def set_cycle(cycle, **fields):
    Cycle.objects.with_scopes_disabled().filter(pk=cycle.pk).update(**fields)
    cycle.refresh_from_db()
    return cycle


def url(world, name="cycle_review", cycle=None):
    return reverse(name, args=[world.org.slug, (cycle or world.cycle).pk])


def in_scope(world, fn, *args, **kw):
    with scope(organization=world.org):
        return fn(world.org, *args, **kw)


# The numbers --------------------------------------------------------------------------------

def test_the_summary_counts_committed_hits_and_the_aspirational_average(world_a):
    w = world_a
    # world_a's two objectives and second company goal: committed, unscored, no close form.
    objective(w, score=1.0)                                        # hit
    close(objective(w, score=0.8), "accomplished")                 # hit: the team says so
    objective(w, score=0.6)                                        # not a hit
    close(objective(w), "missed")                                  # not a hit, unscored
    objective(w, score=0.7, commitment="aspirational")
    objective(w, score=0.3, commitment="aspirational")
    objective(w, score=0.0, state="draft")                         # not part of the review
    objective(w, score=0.0, state="retired")                       # nor this
    s = in_scope(w, review.summary, w.cycle)
    assert s["objectives"] == 9 and s["scored"] == 5
    assert (s["committed_hit"], s["committed_assessed"]) == (2, 4)
    assert s["hit_rate"] == 0.5
    assert s["aspirational_average"] == pytest.approx(0.5)
    assert s["aspirational_scored"] == 2
    assert s["average"] == pytest.approx((1.0 + 0.8 + 0.6 + 0.7 + 0.3) / 5)
    # misses: the 0.8 is accomplished, so not; 0.6 and "missed" are; 0.3 aspirational is.
    assert (s["assessed"], s["misses"]) == (6, 3)


def test_scores_group_teams_under_their_department(world_a):
    w = world_a
    platform = TeamFactory(organization=w.org, name="Platform", parent=w.team)
    deep = TeamFactory(organization=w.org, name="Platform Tools", parent=platform)
    sales = TeamFactory(organization=w.org, name="Sales", kind=Team.Kind.DEPARTMENT)
    objective(w, team=platform, score=0.4)
    objective(w, team=deep, score=0.8)
    objective(w, team=sales, score=0.5, commitment="aspirational")
    objective(w, team=w.company, score=0.9)
    with scope(organization=w.org):
        depts = list(review.departments(w.org))
        rows = {r["team"].name: r for r in review.department_rows(w.org, w.cycle, depts)}
        company = review.company_row(w.org, w.cycle)
        teams = {r["team__name"]: r for r in review.team_rows(w.org, w.cycle, w.team)}
    assert [t.name for t in depts] == ["Org A Engineering", "Sales"]
    eng = rows["Org A Engineering"]
    # Its own objective (world's, unscored) and its teams' at any depth.
    assert (eng["objectives"], eng["scored"], eng["teams"]) == (3, 2, 2)
    assert eng["average"] == pytest.approx(0.6)
    assert rows["Sales"]["aspirational_average"] == pytest.approx(0.5)
    assert rows["Sales"]["all_aspirational"] is False  # one objective is too few to flag
    assert company["objectives"] == 3  # world_a's two company goals and the 0.9
    assert company["average"] == pytest.approx(0.9)
    assert set(teams) == {"Org A Engineering", "Platform", "Platform Tools"}
    assert teams["Platform Tools"]["scored"] == 1


def test_a_department_without_objectives_has_a_row_of_nothing(world_a, alice_client):
    TeamFactory(organization=world_a.org, name="Legal", kind=Team.Kind.DEPARTMENT)
    with scope(organization=world_a.org):
        rows = review.department_rows(world_a.org, world_a.cycle,
                                      list(review.departments(world_a.org)))
    legal = next(r for r in rows if r["team"].name == "Legal")
    assert (legal["team"].name, legal["objectives"], legal["average"]) == ("Legal", 0, None)
    text = alice_client.get(url(world_a, "cycle_review_md")).content.decode()
    assert "| Legal | (all teams) | 0 | 0 | - | - | - |" in text
    assert alice_client.get(url(world_a, "cycle_review_csv")).status_code == 200


def test_all_committed_and_all_aspirational_teams_are_flagged():
    assert review.finish({"objectives": 3, "committed": 3})["all_committed"]
    assert review.finish({"objectives": 2, "aspirational": 2})["all_aspirational"]
    row = review.finish({"objectives": 3, "committed": 2, "aspirational": 1})
    assert not row["all_committed"] and not row["all_aspirational"]


def test_carried_over_twice_counts_each_cycle_the_chain_runs_through(world_a):
    w = world_a
    c1, c2, c3 = w.cycle, CycleFactory(organization=w.org), CycleFactory(organization=w.org)
    a = objective(w, cycle=c1, title="Twice A")
    b = objective(w, cycle=c2, carried_from=a, title="Twice B")
    c = objective(w, cycle=c3, carried_from=b, title="Twice C")
    once = objective(w, cycle=c1, title="Once A")
    objective(w, cycle=c2, carried_from=once, title="Once B")
    with scope(organization=w.org):
        found = {cy: [o.title for o in review.carried_twice(w.org, cy)] for cy in (c1, c2, c3)}
    assert found == {c1: ["Twice A"], c2: ["Twice B"], c3: ["Twice C"]}
    assert c.carried_from_id == b.pk


def test_lessons_are_searchable_and_skip_empty_close_forms(world_a):
    w = world_a
    platform = TeamFactory(organization=w.org, name="Platform", parent=w.team)
    close(objective(w, team=platform, title="Faster deploys"), "partly",
          learned="Flaky tests cost us a month")
    close(objective(w, title="Hire two engineers"), "missed", differently="Start hiring earlier")
    close(objective(w, title="Nothing written"), "accomplished")
    other = objective(w, cycle=CycleFactory(organization=w.org), title="Other cycle")
    close(other, "missed", learned="flaky everywhere")
    with scope(organization=w.org):
        titles = lambda q: [x.objective.title for x in review.lessons(w.org, w.cycle, q)]  # noqa
        assert titles("") == ["Hire two engineers", "Faster deploys"]
        assert titles("FLAKY") == ["Faster deploys"]
        assert titles("platform") == ["Faster deploys"]  # the team's name
        assert titles("hire") == ["Hire two engineers"]  # the objective's title
        assert titles("nothing at all") == []


def test_broken_dependencies_say_why(world_a):
    w = world_a
    today = timezone.localdate()

    def dep(status, needed_by, **kw):
        d = DependencyFactory(downstream=KeyResultFactory(objective=w.objective),
                              upstream=objective(w, team=w.company), status=status,
                              needed_by=needed_by, **kw)
        return d

    declined = dep("declined", today + dt.timedelta(days=30), response_note="No capacity")
    broken = dep("broken", today + dt.timedelta(days=30))
    with scopes_disabled():
        DependencyEvent.objects.create(organization=w.org, dependency=broken, status="broken",
                                       note="The vendor went bankrupt")
    missed = dep("committed", today - dt.timedelta(days=3))
    weak = dep("requested", today + dt.timedelta(days=10))
    Objective.objects.with_scopes_disabled().filter(pk=weak.upstream_objective_id).update(
        effective_health="off_track")
    dep("delivered", today - dt.timedelta(days=3))
    dep("committed", today + dt.timedelta(days=10))  # on its way
    with scope(organization=w.org):
        counts, qs = review.broken_dependencies(w.org, w.cycle, today)
        found = {d.pk: d for d in qs}
    assert counts == {"declined": 1, "broken": 1, "missed": 1, "at_risk": 1}
    # world_a's own dependency (committed, needed by the cycle's end) is on its way too.
    assert set(found) == {declined.pk, broken.pk, missed.pk, weak.pk}
    from okrs.review_export import why
    assert why(found[declined.pk]) == "Declined by the team asked: No capacity"
    assert why(found[broken.pk]) == "Marked broken: The vendor went bankrupt"
    assert found[missed.pk].reason == "missed" and found[weak.pk].reason == "at_risk"


def test_in_a_closed_cycle_a_dependency_still_open_at_the_end_was_missed(world_a):
    w = world_a
    set_cycle(w.cycle, status="closed")
    with scope(organization=w.org):
        counts, qs = review.broken_dependencies(w.org, w.cycle)
        assert [d.pk for d in qs] == [w.dependency.pk]
    assert counts["missed"] == 1


def test_improvements_are_counted_by_status_open_first(world_a):
    w = world_a
    owner = UserFactory()
    improvement(w.workflow, "Shorter syncs", "done", owner)
    improvement(w.workflow, "One owner per milestone", "open", owner)
    improvement(w.workflow, "A shared dashboard", "dropped", owner)
    later = WorkflowFactory(objective=objective(w, cycle=CycleFactory(organization=w.org)))
    improvement(later, "Not this cycle", "open", owner)
    with scope(organization=w.org):
        counts, qs = review.improvements(w.org, w.cycle)
        titles = [i.title for i in qs]
    assert counts == {"open": 1, "done": 1, "dropped": 1}
    assert titles == ["One owner per milestone", "Shorter syncs", "A shared dashboard"]


# The diagnostic -----------------------------------------------------------------------------

@pytest.mark.parametrize("numbers, outcome", [
    ((2, 2, 4, 0), "too_few"),          # too few objectives assessed to tell
    ((10, 3, 6, 0), "neither"),         # 30% missed: under "many"
    ((10, 4, 10, 7), "targets"),        # 40% missed, 70% of their KRs kept the rhythm
    ((10, 6, 10, 9), "targets"),
    ((10, 4, 10, 4), "rhythm"),         # 40% kept it: the rhythm broke
    ((5, 5, 8, 0), "rhythm"),
    ((10, 5, 10, 5), "mixed"),          # between the two
    ((10, 5, 0, 0), "mixed"),           # missed objectives with no key results
])
def test_the_diagnostic_tells_targets_from_rhythm(numbers, outcome):
    assessed, misses, missed_krs, missed_kept = numbers
    d = review.diagnose(assessed=assessed, misses=misses, missed_krs=missed_krs,
                        missed_kept=missed_kept)
    assert d.outcome == outcome
    if outcome != "too_few":
        assert f"{misses} of {assessed} objectives missed" in d.explanation  # says its numbers


def misses_with_check_ins(world, *, regular):
    """Four missed committed objectives (and one hit), each with a KR checked in on every week
    (``regular``) or only in the first week."""
    start = timezone.now() - dt.timedelta(days=40)
    set_cycle(world.cycle, start_date=start.date())
    for _ in range(4):
        kr = KeyResultFactory(objective=objective(world, score=0.3))
        weeks = range(6) if regular else range(1)
        for k in weeks:
            CheckInFactory(key_result=kr, created_at=start + dt.timedelta(days=7 * k + 1))
    objective(world, score=1.0)


def test_misses_with_regular_check_ins_point_at_the_targets(world_a):
    misses_with_check_ins(world_a, regular=True)
    totals = in_scope(world_a, review.summary, world_a.cycle)
    d, r = in_scope(world_a, review.diagnostic, world_a.cycle, totals)
    assert (r["missed_krs"], r["missed_kept"]) == (4, 4)
    assert d.outcome == "targets"


def test_misses_with_stale_check_ins_point_at_the_rhythm(world_a):
    misses_with_check_ins(world_a, regular=False)
    totals = in_scope(world_a, review.summary, world_a.cycle)
    d, r = in_scope(world_a, review.diagnostic, world_a.cycle, totals)
    assert (r["missed_krs"], r["missed_kept"]) == (4, 0)
    assert d.outcome == "rhythm"


def test_corrected_check_ins_do_not_count_for_the_rhythm(world_a):
    misses_with_check_ins(world_a, regular=True)
    from okrs.models import CheckIn
    with scopes_disabled():
        CheckIn.objects.filter(key_result__objective__score=0.3).update(
            correction="deleted", corrected_at=timezone.now())
    totals = in_scope(world_a, review.summary, world_a.cycle)
    assert in_scope(world_a, review.diagnostic, world_a.cycle, totals)[0].outcome == "rhythm"


# The page -----------------------------------------------------------------------------------

def test_every_member_can_read_the_review(world_a, bob_client):
    objective(world_a, score=0.75, commitment="aspirational")
    page = bob_client.get(url(world_a)).content.decode()
    assert f"Review of {world_a.cycle.name}" in page
    assert 'data-testid="aspirational">0.75' in page


def test_an_open_cycle_says_its_scores_are_partial(world_a, alice_client):
    objective(world_a, score=1.0)
    page = alice_client.get(url(world_a)).content.decode()
    assert "is still open" in page and "Scores are partial: 1 of 4 objectives" in page


def test_a_closed_cycle_shows_final_scores(world_a, alice_client):
    set_cycle(world_a.cycle, status="closed", closed_at=timezone.now())
    page = alice_client.get(url(world_a)).content.decode()
    assert 'data-testid="review-closed"' in page and "final scores" in page
    assert "still open" not in page


def test_a_department_opens_its_teams(world_a, alice_client):
    w = world_a
    platform = TeamFactory(organization=w.org, name="Platform", parent=w.team)
    objective(w, team=platform, score=0.5)
    page = alice_client.get(url(w)).content.decode()
    assert "Platform" not in page  # departments only, until one is opened
    page = alice_client.get(url(w), {"department": w.team.pk}).content.decode()
    assert "Teams of Org A Engineering" in page and "Platform" in page
    fragment = alice_client.get(url(w), {"department": w.team.pk}, HTTP_HX_REQUEST="true",
                                HTTP_HX_TARGET="teams").content.decode()
    assert fragment.lstrip().startswith('<div id="teams"') and "Platform" in fragment
    assert "<html" not in fragment


def test_another_organizations_department_is_404(world_a, world_b, alice_client):
    assert alice_client.get(url(world_a), {"department": world_b.team.pk}).status_code == 404
    assert alice_client.get(url(world_a), {"department": "x"}).status_code == 404


def test_the_lessons_search_answers_htmx_with_the_lessons_only(world_a, alice_client):
    close(objective(world_a, title="Faster deploys"), "partly", learned="Flaky tests hurt")
    close(objective(world_a, title="Hiring"), "missed", learned="Start earlier")
    fragment = alice_client.get(url(world_a), {"q": "flaky"}, HTTP_HX_REQUEST="true",
                                HTTP_HX_TARGET="lessons-results").content.decode()
    assert fragment.lstrip().startswith('<div id="lessons-results"')
    assert "Faster deploys" in fragment and "Hiring" not in fragment
    page = alice_client.get(url(world_a), {"q": "nothing like it"}).content.decode()
    assert "No lesson mentions “nothing like it”" in page


def test_lessons_are_paginated(world_a, alice_client):
    for i in range(12):
        close(objective(world_a, title=f"Lesson objective {i:02}"), "partly", learned="x")
    page = alice_client.get(url(world_a)).content.decode()
    assert "Lesson objective 09" in page and "Lesson objective 10" not in page
    assert "lessons_page=2" in page
    page = alice_client.get(url(world_a), {"lessons_page": 2}).content.decode()
    assert "Lesson objective 10" in page and "Lesson objective 09" not in page


def test_the_review_only_reads(world_a, alice_client):
    response = alice_client.post(url(world_a))
    assert response.status_code == 405


def test_the_review_is_linked_from_the_console_and_a_closed_cycles_pages(world_a, alice_client):
    review_url = url(world_a)
    console = alice_client.get(reverse("console_cycles", args=["org-a"])).content.decode()
    assert review_url in console
    edit = alice_client.get(reverse("console_cycle_edit", args=["org-a", world_a.cycle.pk]))
    assert review_url in edit.content.decode()
    home = alice_client.get(reverse("home", args=["org-a"])).content.decode()
    assert review_url in home  # beside the cycle picker, for every member
    set_cycle(world_a.cycle, status="closed")
    page = alice_client.get(reverse("objective", args=["org-a", world_a.objective.pk]))
    assert f'<a href="{review_url}">Read the cycle review</a>' in page.content.decode()


def grow(world, n):
    for i in range(n):
        team = TeamFactory(organization=world.org, kind=Team.Kind.DEPARTMENT)
        sub = TeamFactory(organization=world.org, parent=team)
        o = objective(world, team=sub, score=0.5, commitment="aspirational" if i % 2 else
                      "committed")
        kr = KeyResultFactory(objective=o, score=0.5)
        CheckInFactory(key_result=kr)
        close(o, "missed", learned=f"Lesson {i}")
        DependencyFactory(downstream=kr, upstream=objective(world, team=team), status="declined")
        improvement(world.workflow, f"Improvement {i}", "open", world.admin.user)


def test_the_page_and_downloads_do_not_grow_their_queries_with_the_data(world_a, alice_client):
    pages = [url(world_a), url(world_a) + f"?department={world_a.team.pk}",
             url(world_a, "cycle_review_md"), url(world_a, "cycle_review_csv")]
    grow(world_a, 4)  # half of them missed: the diagnostic reads the rhythm at both sizes
    small = [count_queries(lambda u=u: alice_client.get(u)) for u in pages]
    grow(world_a, 30)
    for before, u in zip(small, pages, strict=True):
        after = count_queries(lambda u=u: alice_client.get(u))
        assert after[0].status_code == 200
        assert_same_queries(before, after)
    # The session, the member, the cycle, and one or two reads per section.
    assert small[0][1] <= 26, small[0][2]


# No person is scored -------------------------------------------------------------------------

def test_no_individual_score_shows_on_the_page_or_in_the_downloads(world_a, alice_client):
    w = world_a
    owner = UserFactory(full_name="Quentin Keyowner")
    scorer = UserFactory(full_name="Rosalind Scorer")
    closer = UserFactory(full_name="Ulrich Closer")
    o = objective(w, score=0.5)
    for value in (0.13, 0.87):
        KeyResultFactory(objective=o, owner=owner, score=value, proposed_score=value,
                         scored_by=scorer, scored_at=timezone.now(),
                         score_reason="Quentin did it")
    close(o, "partly", learned="We learned a thing", closed_by=closer)
    set_cycle(w.cycle, status="closed", closed_by=closer, closed_at=timezone.now())
    for u in (url(w), url(w) + f"?department={w.team.pk}", url(w, "cycle_review_md"),
              url(w, "cycle_review_csv")):
        text = alice_client.get(u).content.decode()
        for name in ("Quentin", "Keyowner", "Rosalind", "Ulrich", "0.13", "0.87"):
            assert name not in text, (u, name)
        assert "We learned a thing" in text or u.endswith(".csv") or "department" in u


# Downloads ----------------------------------------------------------------------------------

def test_the_markdown_download_holds_the_review(world_a, alice_client):
    w = world_a
    objective(w, score=1.0)
    close(objective(w, title="Pipes | and\nbreaks"), "missed", learned="Line one\nline two")
    response = alice_client.get(url(w, "cycle_review_md"))
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"].startswith('attachment; filename="org-a-review-')
    text = response.content.decode()
    assert text.startswith(f"# Cycle review: {w.cycle.name}")
    assert "Committed hit rate: 50%" in text
    assert "The cycle is still open: scores are partial." in text
    assert "### Pipes | and breaks (Org A Engineering, missed)" in text
    assert "What we learned: Line one line two" in text
    assert "| Org A Engineering | (all teams) |" in text


def test_the_csv_download_is_the_scores_table(world_a, alice_client):
    w = world_a
    platform = TeamFactory(organization=w.org, name="=HYPERLINK(1)", parent=w.team)
    objective(w, team=platform, score=0.5)
    response = alice_client.get(url(w, "cycle_review_csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["department"], r["team"]) for r in rows] == [
        ("Org A", ""), ("Org A Engineering", ""), ("Org A Engineering", "'=HYPERLINK(1)"),
        ("Org A Engineering", "Org A Engineering")]
    assert rows[2]["average_score"] == "0.50" and rows[2]["objectives"] == "1"
    assert rows[1]["objectives"] == "2" and rows[1]["scored"] == "1"


def test_downloads_are_scoped_to_the_organization(world_a, world_b, alice_client):
    for name in ("cycle_review_md", "cycle_review_csv"):
        assert alice_client.get(url(world_a, name, world_b.cycle)).status_code == 404


def test_the_markdown_says_when_a_section_holds_only_its_first_rows(world_a, alice_client,
                                                                   monkeypatch):
    monkeypatch.setattr(review, "DOWNLOAD_ROWS", 1)
    monkeypatch.setattr(review, "DOWNLOAD_LESSONS", 1)
    for i in range(2):
        DependencyFactory(downstream=KeyResultFactory(objective=world_a.objective),
                          upstream=objective(world_a, team=world_a.company), status="declined")
        close(objective(world_a, title=f"Lesson {i}"), "missed", learned="Something")
    text = alice_client.get(url(world_a, "cycle_review_md")).content.decode()
    assert "The first 1 of 2 dependencies; the page lists them all." in text
    assert "The first 1 of 2 lessons; search them on the page." in text
    assert text.count("What we learned: Something") == 1


def test_broken_dependencies_and_improvements_are_paginated(world_a, alice_client):
    owner = UserFactory()
    for i in range(12):
        DependencyFactory(downstream=KeyResultFactory(objective=world_a.objective),
                          upstream=objective(world_a, team=world_a.company), status="declined",
                          need=f"Need number {i:02}")
        improvement(world_a.workflow, f"Improvement number {i:02}", "open", owner)
    page = alice_client.get(url(world_a)).content.decode()
    assert "Need number 09" in page and "Need number 10" not in page
    assert "Improvement number 09" in page and "Improvement number 10" not in page
    assert "Page 1 of 2 · 12 in all" in page
    page = alice_client.get(url(world_a), {"dep_page": 2, "imp_page": 2}).content.decode()
    assert "Need number 11" in page and "Need number 00" not in page
    assert "Improvement number 11" in page and "Improvement number 00" not in page
