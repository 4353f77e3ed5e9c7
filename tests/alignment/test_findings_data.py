"""Findings are data: the recompute stores them per cycle, pages read what it stored and never
run the rules; and the title comparison is cheap before it is exact."""

import random
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from alignment import report, rules
from alignment.models import Finding
from dependencies import network
from okrs import services as okr_services
from tests.conftest import client_for
from tests.factories import ObjectiveFactory

# Similarity: cheap bounds first, the same answers as difflib on every pair -----------------------

WORDS = ("win the enterprise market grow revenue close deals ship sso reduce churn by 30% key "
         "result team goal launch v2 mobile app customers recommend first").split()


def _pairs(seed, n):
    rng = random.Random(seed)
    for _ in range(n):
        a = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 7)))
        if rng.random() < 0.5:  # a reworded copy: often similar
            words = a.split()
            rng.shuffle(words)
            b = " ".join(words[:rng.randint(1, len(words))] + [rng.choice(WORDS)])
        else:
            b = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 7)))
        yield a, (b.title() + "!" if rng.random() < 0.3 else b)


@pytest.mark.parametrize("at_least", [rules.SIMILAR, 0.5, 0.95])
def test_the_prefiltered_comparison_agrees_with_difflib_on_every_pair(at_least):
    similar_pairs = 0
    for a, b in _pairs(seed=11, n=4000):
        exact = rules.similarity(a, b)
        assert rules.similar(a, b, at_least) == (exact if exact >= at_least else None), (a, b)
        similar_pairs += exact >= at_least
    assert similar_pairs > 100  # both answers were exercised


@pytest.mark.parametrize("at_least", [rules.SIMILAR, 0.5, 0.95])
def test_the_yes_or_no_comparison_agrees_with_difflib_on_every_pair(at_least):
    """``alike`` (the sibling overlap's check) may answer yes from a lower bound, without
    difflib: the answer is still difflib's."""
    pairs = list(_pairs(seed=12, n=4000))
    pairs += [(f"Department goal {i}", f"Department goal {i + 7}") for i in range(200)]
    pairs += [("x" * 120 + " goal", "x" * 120 + " aims"), ("a" * 199, "a" * 150 + "b" * 60)]
    for a, b in pairs:
        assert rules.alike(a, b, at_least) == (rules.similarity(a, b) >= at_least), (a, b)


def test_the_lcs_bound_is_the_longest_common_subsequence():
    def by_table(a, b):
        previous = [0] * (len(b) + 1)
        for ca in a:
            row = [0]
            for j, cb in enumerate(b):
                row.append(previous[j] + 1 if ca == cb else max(previous[j + 1], row[j]))
            previous = row
        return previous[-1]

    rng = random.Random(3)
    for _ in range(500):
        a, b = ("".join(rng.choice("ab c") for _ in range(rng.randint(0, 40))) for _ in "ab")
        ta, tb = rules._Title(a), rules._Title(b)
        assert rules._lcs_length(ta, tb) == by_table(ta.text, tb.text)


def test_difflib_runs_only_for_pairs_that_could_be_similar(monkeypatch):
    calls = []
    real = rules.SequenceMatcher

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(rules, "SequenceMatcher", counting)
    parent = rules.Objective(1, "Win the enterprise market", 1, "Acme", "company")
    children = [rules.Objective(i, f"Ship feature number {i} to mobile users", 2, "Eng",
                                "department", parent_id=1) for i in range(2, 202)]
    copy = rules.Objective(300, "Win the enterprise market!", 2, "Eng", "department", parent_id=1)
    found = rules.copy_paste(rules.Cycle([parent, *children, copy]))
    assert [f.objective_id for f in found] == [300]
    assert len(calls) <= 2  # 201 pairs, difflib for the copy alone


# Stored per cycle, read by pages -----------------------------------------------------------------


def fresh(o):
    with scope(organization=o.organization):
        return type(o).objects.get(pk=o.pk)


def recompute(r, **kwargs):
    """What the worker does after a change: factories mark nothing, so run it here."""
    with scope(organization=r.org):
        return network.run(r.cycle, **kwargs)


def stored(r):
    with scope(organization=r.org):
        return {(f.rule, f.objective_id): f.pk
                for f in Finding.objects.for_org(r.org).filter(cycle=r.cycle)}


def pages(r, copy):
    slug = r.org.slug
    return {
        "home": (reverse("home", args=[slug]), {}),
        "tree": (reverse("tree", args=[slug]), {}),
        "branch": (reverse("tree_children", args=[slug, r.arr.pk]), {"HTTP_HX_REQUEST": "true"}),
        "objective": (reverse("objective", args=[slug, copy.pk]), {}),
        "report": (reverse("report", args=[slug]), {}),
        "review": (reverse("review", args=[slug]), {}),
    }


@pytest.fixture
def copy(revenue):
    """A proposed objective that repeats its parent's title (and the parent, "Reach $12M ARR",
    reads like a number)."""
    return ObjectiveFactory(organization=revenue.org, cycle=revenue.cycle, team=revenue.eng,
                            parent=revenue.arr, title="Reach $12M ARR!", state="proposed")


@pytest.mark.django_db
def test_pages_show_the_stored_findings_and_never_run_the_rules(revenue, copy, monkeypatch):
    r = revenue
    recompute(r)

    def refuse(*args, **kwargs):
        raise AssertionError("a page ran the misalignment rules")

    monkeypatch.setattr(rules, "run_all", refuse)
    monkeypatch.setattr(report, "findings", refuse)
    monkeypatch.setattr(report, "cycle_data", refuse)
    badge = 'title="Alignment findings">'
    expected = {"home": "alignment finding", "tree": badge + "1 finding",
                "branch": badge + "2 findings",  # the copy repeats its parent, a number too
                "objective": "repeats its parent", "report": "repeats its parent",
                "review": "repeats its parent"}
    liam = client_for(r.liam)
    for name, (url, headers) in pages(r, copy).items():
        response = liam.get(url, **headers)
        assert response.status_code == 200, name
        assert expected[name] in response.content.decode(), name


@pytest.mark.django_db
def test_a_cycle_with_no_stored_report_says_it_is_being_prepared(revenue, copy):
    r = revenue  # built by factories: no recompute has run, so nothing is stored yet
    liam = client_for(r.liam)
    for name, (url, headers) in pages(r, copy).items():
        html = liam.get(url, **headers).content.decode()
        assert "repeats its parent" not in html and 'title="Alignment findings"' not in html, name
        if name in ("home", "objective", "report", "review"):
            assert "being prepared" in html, name
    with scope(organization=r.org):  # the sweep gives the cycle its first report
        assert r.cycle.pk in network.recompute_all()
    recompute(r)
    with scope(organization=r.org):
        assert r.cycle.pk not in network.recompute_all()
    assert "being prepared" not in liam.get(reverse("report", args=[r.org.slug])).content.decode()


@pytest.mark.django_db
def test_a_title_edit_that_copies_the_parent_updates_the_stored_findings(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    recompute(r)
    before = stored(r)
    assert ("copy_paste", r.platform.pk) not in before

    def retitle(title):
        with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
            p = fresh(r.platform)
            okr_services.update_objective(
                membership=r.ethan_m, objective=p, version=p.version, title=title, why=p.why,
                team=p.team, parent=p.parent, is_local=False, state=p.state)

    retitle("Reach $12M ARR")  # the recompute runs after the commit (eager in tests)
    after = stored(r)
    assert ("copy_paste", r.platform.pk) in after
    # Only what changed is written: the other findings are the same rows.
    assert {k: v for k, v in after.items() if k in before} == before
    page = client_for(r.ethan).get(reverse("objective", args=[r.org.slug, r.platform.pk]))
    assert "repeats its parent" in page.content.decode()
    with scope(organization=r.org):
        summary = report.summary(r.org, r.cycle)
        assert summary.total == len(after) and summary.medium >= 1

    retitle("Make the platform enterprise-ready")
    assert stored(r) == before


@pytest.mark.django_db
def test_calendar_findings_move_with_the_recompute_the_hourly_sweep_runs(revenue):
    r = revenue
    recompute(r)
    assert not any(rule == "stale" for rule, _ in stored(r))
    with scope(organization=r.org):  # the hourly sweep recomputes every cycle not closed
        assert r.cycle.pk in network.recompute_all(dirty_only=False)
    recompute(r, now=timezone.now() + timedelta(days=20))
    assert ("stale", r.win.pk) in stored(r)  # "Close 3 enterprise deals": no check-in since


@pytest.mark.django_db
def test_changing_the_alignment_model_updates_the_stored_findings(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    recompute(r)
    assert any(rule == "coverage_gap" for rule, _ in stored(r))
    org = r.org
    data = {"alignment_model": "thematic", "local_share_limit": org.local_share_limit,
            "escalate_after_days": org.escalate_after_days, "timezone": org.timezone,
            "digest_weekday": org.digest_weekday, "digest_hour": org.digest_hour}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(r.liam).post(reverse("alignment_settings", args=[org.slug]), data)
    assert response.status_code == 302
    found = stored(r)
    assert not any(rule == "coverage_gap" for rule, _ in found)  # no gaps in themes
    assert ("orphan", r.win.pk) in found  # a team objective picks no theme


@pytest.mark.django_db
def test_renaming_a_team_updates_the_findings_that_name_it(
        revenue, django_capture_on_commit_callbacks):
    from orgs.services import save_team

    r = revenue
    copy = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, parent=r.arr,
                            title="Reach $12M ARR")
    recompute(r)

    def copy_paste_message():
        with scope(organization=r.org):
            return report.for_objective(r.org, r.cycle, copy.pk)[0].message

    assert "Say how Engineering contributes" in copy_paste_message()
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        eng = fresh(r.eng)
        save_team(actor=r.world.admin, team=eng, name="Platform Engineering", kind=eng.kind,
                  parent=eng.parent, lead=eng.lead)
    assert "Say how Platform Engineering contributes" in copy_paste_message()


# Issue 12: rules that say what they check --------------------------------------------------------


def _settings(org, **changes):
    return {"alignment_model": org.alignment_model, "local_share_limit": org.local_share_limit,
            "escalate_after_days": org.escalate_after_days, "timezone": org.timezone,
            "digest_weekday": org.digest_weekday, "digest_hour": org.digest_hour} | changes


@pytest.mark.django_db
def test_switching_to_strict_reports_the_objectives_that_were_local(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    toil = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, is_local=True,
                            title="Pay down on-call toil")
    recompute(r)
    assert not any(o == toil.pk for _, o in stored(r))  # allowed in the flexible model
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(r.liam).post(reverse("alignment_settings", args=[r.org.slug]),
                                           _settings(r.org, alignment_model="strict"))
    assert response.status_code == 302
    assert ("strict_local", toil.pk) in stored(r)
    html = client_for(r.liam).get(reverse("report", args=[r.org.slug])).content.decode()
    assert "Local in the strict model" in html
    assert ("“Pay down on-call toil” is marked local, but this organization aligns strictly"
            in html)
    page = client_for(r.ethan).get(reverse("objective", args=[r.org.slug, toil.pk]))
    assert "aligns strictly" in page.content.decode()


@pytest.mark.django_db
def test_a_draft_below_a_company_objective_leaves_its_coverage_gap_open(revenue):
    r = revenue
    europe = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.world.company,
                              title="Expand to Europe")
    draft = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales, parent=europe,
                             title="Open a Berlin sales office", state="draft")
    recompute(r)
    assert ("coverage_gap", europe.pk) in stored(r)
    html = client_for(r.liam).get(reverse("report", args=[r.org.slug])).content.decode()
    assert ("No team contributes to “Expand to Europe” yet: 1 draft or proposed objective is "
            "not approved.") in html
    with scope(organization=r.org):
        Objective = type(draft)
        Objective.objects.filter(pk=draft.pk).update(state="published")
    recompute(r)
    assert ("coverage_gap", europe.pk) not in stored(r)


@pytest.mark.django_db
def test_the_report_lists_overlaps_and_task_shaped_key_results_with_their_counts(revenue):
    from tests.factories import KeyResultFactory

    r = revenue
    copy = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, parent=r.arr,
                            title="Win the enterprise customers")
    for i in range(11):
        KeyResultFactory(objective=r.platform, title=f"Launch integration number {i}")
    recompute(r)
    found = stored(r)
    assert ("sibling_overlap", r.win.pk) in found and ("sibling_overlap", copy.pk) in found
    liam = client_for(r.liam)
    html = liam.get(reverse("report", args=[r.org.slug])).content.decode()
    assert "Overlapping objectives" in html
    assert ("“Win enterprise customers” (Sales) and “Win the enterprise customers” "
            "(Engineering) say the same thing under “Reach $12M ARR”.") in html
    # Twelve task-shaped key results ("Ship SSO" and eleven launches): ten shown, then a link.
    assert 'id="rule-task_key_result">Key result is a task <span class="meta">12</span>' in html
    assert html.count("describes a task, not a result") == 10
    assert f"?cycle={r.cycle.pk}&amp;rule=task_key_result" in html
    one = liam.get(reverse("report", args=[r.org.slug]),
                   {"cycle": r.cycle.pk, "rule": "task_key_result"}).content.decode()
    assert one.count("describes a task, not a result") == 12
    assert "“Ship SSO” describes a task, not a result." in one
