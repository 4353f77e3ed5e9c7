"""Findings are data: the recompute stores them per cycle, pages read what it stored and never
run the rules; and the title comparison is cheap before it is exact."""

import random

import pytest

from alignment import rules

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
