"""A run that finds a few rows moved computes again only the findings they reach
(``report._near``): on random cycles and random changes of every kind, what it keeps and
computes is what every rule finds on the whole cycle, and its write turns the stored findings
into those."""

import random
from collections import Counter

import pytest

from alignment import report, rules
from tests.alignment.test_rules_inputs import _KR_TITLES, _TITLES, _cycle


def _live(cycle):
    """The cycle as the recompute reads it: live objectives, and the key results of those."""
    objectives = [o for o in cycle.objectives if o.state != "retired"]
    ids = {o.id for o in objectives}
    return rules.Cycle(**{**cycle.__dict__, "objectives": objectives,
                          "key_results": [k for k in cycle.key_results if k.objective_id in ids],
                          "dependencies": []})


def _made(data, last):
    """What ``report._inputs`` gives: each row's object, the very one of the last run when it
    is equal (as a row read again with the same content), and which were made again."""
    last_o = last.objectives if last else {}
    last_k = last.key_results if last else {}
    objectives, rebuilt, key_results, remade = {}, [], {}, []
    for o in data.objectives:
        was = last_o.get(o.id)
        if was is None or was[2] != o:
            was = (None, None, o)
            rebuilt.append(o.id)
        objectives[o.id] = was
    for k in data.key_results:
        was = last_k.get(k.id)
        if was is None or was[1] != k:
            was = (repr(k), k)
            remade.append(k.id)
        key_results[k.id] = was
    data.objectives = [objectives[o.id][2] for o in data.objectives]
    data.key_results = [key_results[k.id][1] for k in data.key_results]
    return report._Made(last_o, objectives, rebuilt, last_k, key_results, remade,
                        (data.alignment_model, data.local_share_limit))


def _untimed(found):
    return Counter(f for f in found if f.rule not in report.TIMED_RULES)


def _changed(rng, data, next_id):
    """``data`` with one to three random changes of what the rules read."""
    objectives = {o.id: o for o in data.objectives}
    key_results = {k.id: k for k in data.key_results}
    ids = list(objectives)
    for _ in range(rng.randint(1, 3)):
        how = rng.choice(("title", "parent", "team", "state", "local", "commitment", "lead",
                          "new", "gone", "kr title", "kr moved", "kr new", "kr gone", "also"))
        o = objectives[rng.choice(ids)]
        changes = {}
        if how == "title":
            parent = objectives.get(o.parent_id)
            changes["title"] = rng.choice([*_TITLES, parent.title if parent else o.title])
        elif how == "parent":
            changes["parent_id"] = rng.choice([None, *ids])
        elif how == "team":
            changes.update(team_id=7, team="Team 7", team_kind=rng.choice(("team", "company")))
        elif how == "state":
            changes["state"] = rng.choice(("draft", "approved", "published"))
        elif how == "local":
            changes["is_local"] = not o.is_local
        elif how == "commitment":
            changes["commitment"] = rng.choice(("committed", "aspirational"))
        elif how == "lead":
            changes.update(owner_id=9, owner="Lead 9")
        elif how == "also":
            changes["also_parents"] = tuple(rng.sample(ids, 1))
        elif how == "new":
            next_id += 1
            objectives[next_id] = rules.Objective(
                id=next_id, title=rng.choice(_TITLES), team_id=o.team_id, team=o.team,
                team_kind=o.team_kind, parent_id=rng.choice([o.id, o.parent_id]))
            key_results[next_id + 10_000] = rules.KeyResult(
                next_id + 10_000, next_id, rng.choice(_KR_TITLES))
        elif how == "gone" and len(objectives) > 2:
            del objectives[o.id]
            ids.remove(o.id)
            key_results = {pk: k for pk, k in key_results.items() if k.objective_id != o.id}
        elif how.startswith("kr") and key_results:
            k = key_results[rng.choice(list(key_results))]
            if how == "kr title":
                key_results[k.id] = k._replace(title=rng.choice([*_KR_TITLES, *_TITLES]))
            elif how == "kr moved":
                key_results[k.id] = k._replace(objective_id=rng.choice(ids))
            elif how == "kr new":
                next_id += 1
                key_results[next_id + 10_000] = rules.KeyResult(
                    next_id + 10_000, rng.choice(ids), rng.choice(_KR_TITLES))
            else:
                del key_results[k.id]
        if changes:
            objectives[o.id] = rules.Objective(**{**o.__dict__, **changes})
    return rules.Cycle(**{**data.__dict__,
                          "objectives": [objectives[pk] for pk in sorted(objectives)],
                          "key_results": [key_results[pk] for pk in sorted(key_results)]}
                       ), next_id


@pytest.mark.parametrize("seed", range(8))
def test_the_findings_a_change_reaches_computed_again_are_every_rules_findings(seed):
    rng = random.Random(seed)
    rules.forget()
    data = _live(_cycle(rng, rng.choice((40, 80))))
    made = _made(data, None)
    found = rules.run_all(data)
    described = report._describe(data, found, made)
    stored = {}  # key -> [(id, version)]: the stored rows, as ``_after_write`` keeps them
    for pk, f in enumerate(found, 1):
        if f.rule not in report.TIMED_RULES:
            stored.setdefault(report._finding_key(f), []).append((pk, "v"))
    next_id, near_runs = 1000, 0
    for _ in range(25):
        data, next_id = _changed(rng, data, next_id)
        made = _made(data, described)
        near = report._near(described, data, made, stored)
        expected = rules.run_all(data)
        if near is None:  # too much moved for a run over the changes only
            described = report._describe(data, expected, made)
            stored = {}
            for pk, f in enumerate(expected, 1):
                if f.rule not in report.TIMED_RULES:
                    stored.setdefault(report._finding_key(f), []).append((pk, "v"))
            continue
        near_runs += 1
        kept = [*near.shape, *(f for fs in near.by_objective.values() for f in fs)]
        assert Counter(kept) == _untimed(expected)
        # The write: the rows removed go, the found ones are added, the others stay.
        add, remove, taken = near.delta
        ids = {pk for rows in stored.values() for pk, _ in rows}
        assert set(remove) <= ids and len(set(remove)) == len(remove)
        inserted = []
        for f in add:
            next_id += 1
            inserted.append((next_id, *report._finding_key(f), "v"))
        after = report._stored_after(stored, taken, inserted)
        assert {pk for rows in after.values() for pk, _ in rows} \
            == ids - set(remove) | {row[0] for row in inserted}
        assert Counter({key: len(rows) for key, rows in after.items()}) \
            == Counter(map(report._finding_key, _untimed(expected).elements()))
        stored, described = after, near.described
    assert near_runs >= 15, near_runs


def test_every_rule_is_per_objective_of_the_shape_or_of_the_clock():
    groups = (rules.PER_OBJECTIVE, rules.SHAPE, rules.CLOCK)
    assert sorted(r.__name__ for g in groups for r in g) == sorted(r.__name__ for r in rules.RULES)


@pytest.mark.parametrize("seed", range(4))
def test_the_findings_of_the_shape_rules_name_no_objective_and_the_others_one(seed):
    """``report._describe`` files a finding with no objective under the ``SHAPE`` rules."""
    rng = random.Random(seed)
    cycle = _cycle(rng, 80)
    for rule in rules.SHAPE:
        assert all(f.objective_id is None for f in rule(cycle)), rule.__name__
    for rule in rules.PER_OBJECTIVE:
        assert all(f.objective_id is not None for f in rule(cycle)), rule.__name__
