"""The misalignment rules' share of a recompute: their inputs come from rows kept by version
(objectives read again only when their version moved, key results from the rows the network
kept in the same run, once their versions are checked), the rules that read no title are one
unit keyed by the cycle's shape (``rules.SHAPE``), and the digest stored with the report covers
the findings as the run's write left them, so the run after a run that wrote findings keeps
them. Every run must store exactly what a run from scratch stores."""

import json
import random
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django_scopes import scope, scopes_disabled

from alignment import report as alignment_report
from alignment import rules
from alignment.models import Finding, FindingsReport, RuleUnits
from dependencies import generate, network
from dependencies.models import NetworkState
from okrs.models import KeyResult, Objective
from orgs.models import Organization, Team, Theme, User
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import (
    CHANGES,
    MORE_CHANGES,
    _objectives,
    at,
    counted,  # noqa: F401 (a fixture, used by name)
    run,
    run_from_scratch_stores,
)

pytestmark = pytest.mark.django_db


def later(minutes):
    return at() + timedelta(minutes=minutes)

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="row versions (xmin, ctid) exist on PostgreSQL only")


# Changes of what the rules read, by plain writes (as a shell or the platform admin would).


def _copy_parent_title(r, rng):
    o = rng.choice([o for o in _objectives(r) if o.parent_id])
    Objective.objects.filter(pk=o.pk).update(title=Objective.objects.get(pk=o.parent_id).title)


def _task_key_result(r, rng):
    k = rng.choice(list(KeyResult.objects.for_org(r.org).filter(objective__cycle=r.cycle)))
    KeyResult.objects.filter(pk=k.pk).update(title=rng.choice(
        ["Launch the billing pipeline", "Ship SSO", "Reach 40% win rate"]))


def _key_result_owner_team(r, rng):
    k = rng.choice(list(KeyResult.objects.for_org(r.org).filter(objective__cycle=r.cycle)))
    KeyResult.objects.filter(pk=k.pk).update(
        owner_team=rng.choice(list(Team.objects.for_org(r.org))))


def _local(r, rng):
    o = rng.choice([o for o in _objectives(r) if o.parent_id])
    Objective.objects.filter(pk=o.pk).update(is_local=not o.is_local,
                                             parent=None if not o.is_local else o.parent_id)


def _commitment(r, rng):
    for o in rng.sample(_objectives(r), 3):
        Objective.objects.filter(pk=o.pk).update(commitment=rng.choice(
            ("committed", "aspirational")))


def _theme(r, rng):
    theme, _ = Theme.objects.get_or_create(organization=r.org,
                                           name=rng.choice(("Growth", "Trust")))
    Objective.objects.filter(pk=rng.choice(_objectives(r)).pk).update(theme=theme)
    if rng.random() < 0.5:
        Theme.objects.filter(pk=theme.pk).update(name=f"Theme {rng.randint(1, 1000)}")


def _lead(r, rng):
    team = Team.objects.get(pk=rng.choice(_objectives(r)).team_id)
    if rng.random() < 0.5 and team.lead_id:
        User.objects.filter(pk=team.lead_id).update(full_name=f"Lead {rng.randint(1, 1000)}")
    else:
        Team.objects.filter(pk=team.pk).update(lead=rng.choice((r.mia, r.ethan, r.liam)))


def _alignment_model(r, rng):
    with scopes_disabled():
        Organization.objects.filter(pk=r.org.pk).update(
            alignment_model=rng.choice(("strict", "flexible", "thematic")),
            local_share_limit=rng.choice((10, 35, 60)))


def _damaged_finding(r, rng):
    findings = list(Finding.objects.filter(cycle=r.cycle).exclude(
        rule__in=alignment_report.TIMED_RULES))
    if findings:
        f = rng.choice(findings)
        if rng.random() < 0.5:
            Finding.objects.filter(pk=f.pk).delete()
        else:
            Finding.objects.filter(pk=f.pk).update(message=f"{f.message} (edited)")


def _state(r, rng):
    o = rng.choice(_objectives(r))
    Objective.objects.filter(pk=o.pk).update(state=rng.choice(("draft", "proposed",
                                                               "approved", "published")))


RULE_CHANGES = (_copy_parent_title, _task_key_result, _key_result_owner_team, _local,
                _commitment, _theme, _lead, _alignment_model, _damaged_finding, _state)


def _settled_with_changes(r, seed):
    """A generated network of 200 objectives, run once; the random changes of every kind to
    make to it, shuffled, and the random generator that picks them."""
    rng = random.Random(seed)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 200, seed=seed)
    network.forget()
    run(r, at())
    changes = [*RULE_CHANGES, *MORE_CHANGES, *CHANGES]
    rng.shuffle(changes)
    return rng, changes


@pytest.mark.parametrize("seed", [5, 6])
def test_rules_from_kept_rows_store_what_a_run_from_scratch_stores(
        revenue, counted, seed):  # noqa: F811
    """Random changes of every kind; after each, a run from what the process kept, then a run
    with no change (after a run that wrote findings: on PostgreSQL it keeps them), then a run
    from scratch: all store the same."""
    r = revenue
    rng, changes = _settled_with_changes(r, seed)
    reused_after_a_write = 0
    for step, change in enumerate([*changes, *rng.choices(changes, k=8)]):
        with scope(organization=r.org):
            before = stored(r)[2]
            change(r, rng)
        run(r, later(3 * step + 1))  # from what this process kept
        after = stored(r)
        counted.clear()
        run(r, later(3 * step + 2))  # nothing changed since
        assert stored(r) == after, change.__name__
        if after[2] != before and counted["rules reused"]:
            reused_after_a_write += 1
        run_from_scratch_stores(r, later(3 * step + 2), after, change.__name__)
    if connection.vendor == "postgresql":
        assert reused_after_a_write >= 5, reused_after_a_write


def _stored_findings(r):
    with scope(organization=r.org):
        return Counter(Finding.objects.for_org(r.org).filter(cycle=r.cycle).values_list(
            "rule", "message", "objective_id", "key_result_id"))


def _inputs(r):
    with scopes_disabled():
        return FindingsReport.objects.filter(cycle=r.cycle).values_list(
            "inputs", flat=True).get()


def test_a_run_after_a_run_that_wrote_findings_does_not_run_the_rules(
        revenue, counted):  # noqa: F811
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 80)
    run(r, at())
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.win.pk).update(title=r.arr.title)
    counted.clear()
    run(r, at(minutes=1))
    assert counted["rules run"] == 1
    assert ("copy_paste", r.win.pk) in {(rule, o) for rule, _, o, _ in _stored_findings(r)}
    counted.clear()
    run(r, at(minutes=2))
    if connection.vendor == "postgresql":
        assert counted["rules reused"] == 1, counted
    else:  # no row versions: the write cannot be checked, the rules run once more
        assert counted["rules run"] == 1, counted
    counted.clear()
    assert run(r, at(minutes=3)).skipped  # nothing it reads changed: no rule but the clock's
    assert not counted, counted


@postgresql_only
def test_a_finding_written_by_someone_else_during_the_write_is_not_kept(
        revenue, monkeypatch, counted):  # noqa: F811
    """A write outside the services (no lock) lands between the run's insert of its findings
    and the digest it stores: the versions show it, the digest stored matches no run, and the
    next run runs every rule and repairs the finding."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 80)
    run(r, at())
    insert = alignment_report._insert

    def insert_then_someone_edits(cycle, found):
        rows = insert(cycle, found)
        Finding.objects.filter(pk=rows[0][0]).update(message="Edited by someone else")
        return rows

    monkeypatch.setattr(alignment_report, "_insert", insert_then_someone_edits)
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.win.pk).update(title=r.arr.title)
    run(r, at(minutes=1))
    assert _inputs(r) == ""
    assert "Edited by someone else" in {m for _, m, _, _ in _stored_findings(r)}
    monkeypatch.setattr(alignment_report, "_insert", insert)
    counted.clear()
    run(r, at(minutes=2))
    assert counted["rules run"] == 1, counted
    assert "Edited by someone else" not in {m for _, m, _, _ in _stored_findings(r)}
    run_from_scratch_stores(r, at(minutes=2), stored(r), "edited")


def test_a_write_between_the_digest_and_the_rules_read_is_caught_by_the_next_run(
        revenue, monkeypatch, counted):  # noqa: F811
    """An objective's title changes after the run took the digest of the rules' inputs and
    before the rules read it: what is stored never claims findings for rows they did not read;
    the next run runs the rules again and stores what a run from scratch stores."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 80)
    run(r, at())
    check = alignment_report._check

    def check_then_someone_writes(org, cycle):
        found = check(org, cycle)
        Objective.objects.filter(pk=r.win.pk).update(title=r.arr.title)
        return found

    monkeypatch.setattr(alignment_report, "_check", check_then_someone_writes)
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.platform.pk).update(title="Ship the platform")
    run(r, at(minutes=1))
    monkeypatch.setattr(alignment_report, "_check", check)
    counted.clear()
    run(r, at(minutes=2))
    assert counted["rules run"] == 1, counted
    assert ("copy_paste", r.win.pk) in {(rule, o) for rule, _, o, _ in _stored_findings(r)}
    run_from_scratch_stores(r, at(minutes=2), stored(r), "between")


def test_the_rules_read_key_results_the_network_kept_only_when_they_are_current(revenue):
    """The rows ``dependencies.network`` kept are from its last run: after a write they are
    not the table's, and the rules read the key results themselves."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 80)
    run(r, at())
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.deals.pk).update(title="Launch the billing pipeline")
        found = alignment_report.findings(r.org, r.cycle, now=at(minutes=1))
    assert [(f.rule, f.key_result_id) for f in found if f.rule == "task_key_result"
            and f.key_result_id == r.deals.pk] == [("task_key_result", r.deals.pk)]


# Writes made after the network read its key results, each one that ``_check`` must see.


def _same_values(r, rng):
    k = rng.choice(_key_results(r))
    KeyResult.objects.filter(pk=k.pk).update(title=F("title"))


def _twice_in_one_transaction(r, rng):
    k = rng.choice(_key_results(r))
    with transaction.atomic():
        KeyResult.objects.filter(pk=k.pk).update(current_value=F("current_value"))
        KeyResult.objects.filter(pk=k.pk).update(title=F("title"))


def _unread_column(r, rng):
    k = rng.choice(_key_results(r))
    KeyResult.objects.filter(pk=k.pk).update(current_value=(k.current_value or 0) + 1)


def _goes(r, rng):
    KeyResult.objects.filter(pk=rng.choice(_key_results(r)).pk).delete()


def _comes(r, rng):
    o = rng.choice(_objectives(r))
    KeyResult.objects.create(organization=r.org, objective=o, title="Sign 4 distributors",
                             owner_team_id=o.team_id, start_value=0, target_value=4)


def _comes_and_goes(r, rng):
    _comes(r, rng)
    _goes(r, rng)


def _other_objective(r, rng):
    k = rng.choice(_key_results(r))
    KeyResult.objects.filter(pk=k.pk).update(objective=rng.choice(_objectives(r)))


def _objective_retired_and_back(r, rng):
    o = rng.choice(_objectives(r))
    Objective.objects.filter(pk=o.pk).update(state="retired")
    if rng.random() < 0.5:
        Objective.objects.filter(pk=o.pk).update(state=o.state)


def _objective_same_values(r, rng):
    Objective.objects.filter(pk=rng.choice(_objectives(r)).pk).update(title=F("title"))


KEY_RESULT_WRITES = (_same_values, _twice_in_one_transaction, _unread_column, _goes, _comes,
                     _comes_and_goes, _other_objective, _objective_retired_and_back,
                     _objective_same_values)


def _key_results(r):
    return list(KeyResult.objects.for_org(r.org).filter(objective__cycle=r.cycle).exclude(
        objective__state="retired").order_by("pk"))


@postgresql_only
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_network_key_results_are_taken_exactly_when_their_versions_are_the_tables(
        revenue, seed):
    """``_check`` looks at the versions of the key results written since the network read
    them, not at every version: after random writes (with the same values, twice in one
    transaction, rows that come, go, or change objective, their objective retired or back),
    some with a run in between, it takes the network's rows exactly when the md5 of every
    version (the check before) says they are the table's, with the same content digest."""
    r = revenue
    rng = random.Random(seed)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 120, seed=seed)
    run(r, at())
    taken = 0
    for step in range(30):
        with scope(organization=r.org):
            for change in rng.sample(KEY_RESULT_WRITES, rng.choice((0, 0, 1, 1, 2))):
                change(r, rng)
            kept = network.kept_rows(r.cycle.pk)
            content, versions = alignment_report._md5s((
                alignment_report._key_results_qs(r.org, r.cycle),
                alignment_report._KEY_RESULT_COLUMNS, "okrs_keyresult"))
            current = versions == alignment_report._versions_md5(
                (pk, k["row_version"]) for pk, k in kept.key_results.items())
            checked = alignment_report._key_results_since(r.org, r.cycle, kept.key_results,
                                                          kept.horizon)
            assert (checked is not None) == current, step
            check = alignment_report._check(r.org, r.cycle)
            assert (check.network_key_results is kept.key_results) == current, step
            assert check.key_results == content
            taken += current
            # The digest a check-in's run takes is the table's when the rows are.
            values, digest = alignment_report._DESCRIBED[r.cycle.pk]
            if current and values == alignment_report._rules_values(kept.key_results):
                assert digest == content, step
        if rng.random() < 0.3:
            run(r, at(minutes=step + 1))
    assert 5 <= taken <= 25, taken
    run(r, at(minutes=40))
    run_from_scratch_stores(r, at(minutes=40), stored(r), "written")


@postgresql_only
def test_a_check_in_run_reads_no_key_result_to_check_the_rules_inputs(
        revenue, monkeypatch, counted):  # noqa: F811
    """After a run whose check described the network's key results, a check-in's run finds
    the rules' inputs from that digest: no key result read by the check, the rules reused,
    and what a run from scratch stores."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 120)
    run(r, at())
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(title="Ship single sign-on")
    run(r, at(minutes=1))  # the rules run, on the network's key results, described
    sources = []
    md5s = alignment_report._md5s

    def counting(*args, **kwargs):
        sources.extend(queryset.model.__name__ for queryset, _, _ in args)
        return md5s(*args, **kwargs)

    monkeypatch.setattr(alignment_report, "_md5s", counting)
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.deals.pk).update(current_value=61)
    counted.clear()
    run(r, at(minutes=2))
    # Nor any stored finding: the fingerprint found them as the last run's write left them.
    assert sources == ["Objective"], sources
    assert counted["rules reused"] == 1, counted
    run_from_scratch_stores(r, at(minutes=2), stored(r), "check-in")


@postgresql_only
@pytest.mark.parametrize("how", ["deleted", "edited", "same values"])
def test_a_finding_written_by_hand_after_a_run_is_repaired_by_the_next(
        revenue, counted, how):  # noqa: F811
    """A stored finding written outside the services after the run that stored it (deleted,
    edited, or written with the same values): the next run, a check-in's, does not take the
    findings as that run left them; the rules run and store what a run from scratch stores."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 120)
    run(r, at())
    run(r, at(minutes=1))
    expected = stored(r)
    with scope(organization=r.org):
        finding = Finding.objects.filter(cycle=r.cycle).exclude(
            rule__in=alignment_report.TIMED_RULES).order_by("pk").first()
        findings = Finding.objects.filter(pk=finding.pk)
        if how == "deleted":
            findings.delete()
        else:
            findings.update(message=finding.message + (" (edited)" if how == "edited" else ""))
        KeyResult.objects.filter(pk=r.deals.pk).update(current_value=61)
    counted.clear()
    run(r, at(minutes=1))
    assert counted["rules run"] == 1, counted
    assert stored(r)[2] == expected[2]
    run_from_scratch_stores(r, at(minutes=1), stored(r), how)


@postgresql_only
def test_a_key_result_renamed_after_the_network_read_it_is_seen_by_the_next_run(
        revenue, monkeypatch):
    """A key result's title changes after the network read the rows of a check-in's run and
    before the rules' check: the digest that run takes describes the rows it read, and the
    next run sees the title."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 120)
    run(r, at())
    run(r, at(minutes=1))
    prepare = alignment_report.prepare

    def someone_renames_then_prepare(cycle, **kwargs):
        KeyResult.objects.filter(pk=r.deals.pk).update(title="Launch the billing pipeline")
        return prepare(cycle, **kwargs)

    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(current_value=1)
    monkeypatch.setattr(alignment_report, "prepare", someone_renames_then_prepare)
    run(r, at(minutes=2))
    monkeypatch.setattr(alignment_report, "prepare", prepare)
    run(r, at(minutes=3))
    assert ("task_key_result", r.deals.pk) in {
        (rule, k) for rule, _, _, k in _stored_findings(r)}
    run_from_scratch_stores(r, at(minutes=3), stored(r), "renamed")


@postgresql_only
def test_a_title_edit_reads_again_only_the_objective_that_moved(revenue, monkeypatch):
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 120)
    run(r, at())
    # A run from scratch that writes nothing (the first wrote health, moving row versions).
    run_from_scratch_stores(r, at(), stored(r), "settle")
    reads = Counter()

    def counting(name, read):
        def counted_read(queryset):
            rows = read(queryset)
            reads[name] += len(rows)
            return rows
        return counted_read

    for name in ("_read_objectives", "_read_key_results"):
        monkeypatch.setattr(alignment_report, name,
                            counting(name, getattr(alignment_report, name)))
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.win.pk).update(title=r.arr.title)
    run(r, at(minutes=1))
    # The objective edited, and no key result: those come from the network's rows.
    assert reads == {"_read_objectives": 1}, reads
    run_from_scratch_stores(r, at(minutes=1), stored(r), "title")


def _objective(o, **changes):
    return rules.Objective(**{**o.__dict__, **changes})


def test_the_shape_rules_kept_as_one_unit_give_what_they_give_from_scratch(revenue):
    r = revenue
    rng = random.Random(8)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 300)
        data = alignment_report.cycle_data(r.org, r.cycle, now=at())
    rules.forget()
    rules.run_all(data)
    teams = list({(o.team_id, o.team, o.team_kind) for o in data.objectives})
    ids = [o.id for o in data.objectives]
    kept = 0
    for _ in range(12):
        changed = []
        for o in data.objectives:
            if rng.random() < 0.03:
                team_id, team, kind = rng.choice(teams)
                o = _objective(o, **rng.choice([
                    {"parent_id": rng.choice([None, *ids])},
                    {"team_id": team_id, "team": team, "team_kind": kind},
                    {"is_local": not o.is_local},
                    {"commitment": rng.choice(("committed", "aspirational"))},
                    {"state": rng.choice(("draft", "published", "retired"))},
                    {"owner_id": rng.choice((None, 1, 2)), "owner": rng.choice(("Ann", "Bo"))},
                    {"also_parents": tuple(rng.sample(ids, rng.choice((0, 1, 2))))},
                    {"title": f"{o.title} again"},
                ]))
            changed.append(o)
        data = rules.Cycle(**{**data.__dict__, "objectives": changed,
                              "alignment_model": rng.choice(("strict", "flexible")),
                              "local_share_limit": rng.choice((0.1, 0.35))})
        shape = ("shape", rules._shape(data))
        kept += shape in rules.UNITS.previous
        found = rules.run_all(data)
        rules.forget()
        assert found == rules.run_all(data)
    assert kept >= 1


def test_the_rules_from_kept_inputs_give_what_the_rules_give_on_the_data_from_scratch(
        revenue):
    """``findings`` (from kept rows, the clock's rules on their narrowed rows) against
    ``rules.run_all`` on ``cycle_data`` (everything read as it is)."""
    r = revenue
    rng = random.Random(4)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 200)
    run(r, at())
    for change in [*RULE_CHANGES, *MORE_CHANGES]:
        with scope(organization=r.org):
            change(r, rng)
            found = alignment_report.findings(r.org, r.cycle, now=at(minutes=1))
            expected = rules.run_all(alignment_report.cycle_data(r.org, r.cycle,
                                                                 now=at(minutes=1)))
        assert Counter(found) == Counter(expected), change.__name__


def test_a_team_renamed_after_the_network_read_its_key_results_is_named_as_it_is_now(
        revenue, monkeypatch):
    """The key results the network read carry their owner team's name of that moment, and a
    rename does not move their versions: the rules take the name from the teams they read
    themselves, so a rename between the two reads is not stored as the old name."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 60)
        KeyResult.objects.filter(pk=r.deals.pk).update(title="Launch the billing pipeline",
                                                       owner_team=r.sales)
    run(r, at())
    check = alignment_report._check

    def rename_then_check(org, cycle):
        Team.objects.filter(pk=r.sales.pk).update(name="Revenue")
        return check(org, cycle)

    monkeypatch.setattr(alignment_report, "_check", rename_then_check)
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.win.pk).update(title="Win more enterprise customers")
    run(r, at(minutes=1))
    monkeypatch.setattr(alignment_report, "_check", check)
    with scope(organization=r.org):
        assert Finding.objects.get(rule="task_key_result", key_result=r.deals).who == "Revenue"
    run_from_scratch_stores(r, at(minutes=1), stored(r), "renamed")


# The similarity rules' units stored in the database (``RuleUnits``): a restart reads them back.


def run_from_nothing_stores(r, now, expected, name):
    """``run_from_scratch_stores`` with no stored units either: every unit is computed."""
    with scopes_disabled():
        RuleUnits.objects.filter(cycle=r.cycle).delete()
    run_from_scratch_stores(r, now, expected, name)
    assert rules.UNITS.last[1] == 0, name  # nothing restored


def _restart(r):
    """What a new process finds: nothing kept in memory, and (so that the rules run) no
    fingerprint and no rules' inputs digest stored."""
    network.forget()
    with scopes_disabled():
        NetworkState.objects.filter(cycle=r.cycle).update(fingerprint="")
        FindingsReport.objects.filter(cycle=r.cycle).update(inputs="")


def _row(r):
    with scopes_disabled():
        return RuleUnits.objects.get(cycle=r.cycle)


@pytest.mark.parametrize("seed", [11, 12])
def test_a_restarted_process_reads_the_units_back_and_stores_what_a_run_from_nothing_stores(
        revenue, seed):
    """Random changes of every kind by plain writes, each followed, half the time, by a restart
    (nothing kept in the process): the run reads the stored units, computes those whose input
    changed, and stores what a run from nothing (no stored units either) stores."""
    r = revenue
    rng, changes = _settled_with_changes(r, seed)
    restored_runs = 0
    for step, change in enumerate([*changes, *rng.choices(changes, k=8)]):
        with scope(organization=r.org):
            change(r, rng)
        if rng.random() < 0.5:
            _restart(r)
            run(r, later(2 * step + 1))
            computed, restored = rules.UNITS.last
            if restored:
                restored_runs += 1
                assert computed < restored, (change.__name__, computed, restored)
        else:
            run(r, later(2 * step + 1))
        run_from_nothing_stores(r, later(2 * step + 1), stored(r), change.__name__)
    assert restored_runs >= 5, restored_runs


def test_a_restart_computes_no_unit_whose_input_did_not_change(revenue, world_b):
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 200)
    with scope(organization=world_b.org):
        generate.build(world_b.org, world_b.cycle, 60)
    network.forget()
    run(r, at())
    row = _row(r)
    assert row.units > 10 and row.organization_id == r.org.pk
    expected = stored(r)
    # Another organization's run writes its own row, not this one.
    with scope(organization=world_b.org):
        network.run(world_b.cycle, now=at())
    assert _row(r).payload == row.payload
    _restart(r)
    run(r, at(minutes=1))
    assert rules.UNITS.last == (0, row.units)
    assert stored(r) == expected
    # A title edit outside the services, then a restart: the units it reached are computed
    # again, the others read back.
    with scope(organization=r.org):
        objective = _objectives(r)[7]
        Objective.objects.filter(pk=objective.pk).update(title=r.arr.title)
    _restart(r)
    run(r, at(minutes=2))
    computed, restored = rules.UNITS.last
    assert 1 <= computed <= 5 and restored >= row.units - 5, (computed, restored)
    run_from_nothing_stores(r, at(minutes=2), stored(r), "title")


def _damage(r, world_b, how):
    row = _row(r)
    if how == "checksum":
        row.checksum = "0" * 32
    elif how == "code":
        row.code = "f" * 32
    elif how == "payload":  # every result turned into "no result", the checksum left
        data = json.loads(row.payload)
        data["none"] += "".join(sorted(data["some"]))
        data["some"] = {}
        row.payload = json.dumps(data)
    elif how == "json":  # not JSON, with a checksum that matches
        row.payload = "{"
        row.checksum = alignment_report._md5(
            f"{alignment_report._units_salt(r.org, r.cycle)}\n{row.payload}")
    elif how == "foreign":  # the row given to another organization's cycle, as if its own
        row.organization, row.cycle = world_b.org, world_b.cycle
        row.checksum = alignment_report._md5(
            f"{alignment_report._units_salt(world_b.org, world_b.cycle)}\n{row.payload}")
    with scopes_disabled():
        row.save()


@pytest.mark.parametrize("how", ["checksum", "code", "payload", "json", "foreign"])
def test_a_damaged_stale_or_foreign_row_is_not_read(revenue, world_b, how):
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 200)
    with scope(organization=world_b.org):
        generate.build(world_b.org, world_b.cycle, 60)
    network.forget()
    run(r, at())
    expected = stored(r)
    assert json.loads(_row(r).payload)["some"]  # results that would change the findings
    _damage(r, world_b, how)
    _restart(r)
    run(r, at(minutes=1))
    assert rules.UNITS.last[1] == 0, how
    assert stored(r) == expected
    assert _row(r).checksum != "0" * 32  # written again, whole
    if how == "foreign":  # the other organization finds no result of ours in it
        _restart(r)
        with scope(organization=world_b.org):
            network.run(world_b.cycle, now=at(minutes=2))
        assert rules.UNITS.last[1] == 0


def test_the_stored_units_give_back_what_the_rules_compute(revenue):
    """Each stored kind, read back from its stored form, is the result computed from nothing."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 300)
        for o in _objectives(r)[:40:3]:  # copies of the parent's title: copy-paste findings
            Objective.objects.filter(pk=o.pk).update(title=Objective.objects.get(
                pk=o.parent_id).title if o.parent_id else o.title)
        data = alignment_report.cycle_data(r.org, r.cycle, now=at())
    rules.forget()
    expected = rules.run_all(data)
    rules.UNITS.salt = "test"
    entries = rules.UNITS.to_store()
    assert {key[0] for key in rules.UNITS.previous} >= set(rules.STORED_KINDS)
    rules.forget()
    rules.UNITS.salt, rules.UNITS.stored = "test", json.loads(json.dumps(entries))
    assert rules.run_all(data) == expected
    assert rules.UNITS.last == (0, len(entries))
