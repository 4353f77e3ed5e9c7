"""The similarity rules measure with difflib's ratio, computed faster: ``_matched`` counts the
characters ``SequenceMatcher`` matches, ``_could_match`` (rapidfuzz) leaves out only pairs that
cannot be similar, and titles are prepared in one pass. Each is held to difflib itself, and the
rules to a plain comparison of every pair with ``similarity``."""

import random
from difflib import SequenceMatcher

import pytest

from alignment import rules
from alignment.rules import Cycle, KeyResult, Objective


def _difflib_matched(a, b):
    return sum(block.size for block in SequenceMatcher(None, a, b).get_matching_blocks())


def _text(rng, alphabet, longest):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))


@pytest.mark.parametrize("alphabet", ["ab", "ab c", "aab1 ", "abcdefgh 12", "team goal 0123"])
def test_matched_counts_what_difflib_matches(alphabet):
    rng = random.Random(alphabet)
    for _ in range(4000):
        a, b = _text(rng, alphabet, 30), _text(rng, alphabet, 30)
        if rng.random() < 0.5:  # a shared start: the prefix shortcut
            common = _text(rng, alphabet, 12)
            a, b = common + a, common + b
        assert rules._matched(a, b) == _difflib_matched(a, b), (a, b)


def test_matched_counts_what_difflib_matches_up_to_199_characters():
    rng = random.Random(1)
    for _ in range(200):
        a, b = _text(rng, "abcdefghij ", 199), _text(rng, "abcdefghij ", 199)
        assert rules._matched(a, b) == _difflib_matched(a, b)


def test_long_titles_keep_difflibs_junk_heuristic():
    """From 200 characters on, difflib ignores characters frequent in the second text: the
    rules then ask difflib itself, and give its ratio."""
    rng = random.Random(2)
    for _ in range(50):
        a = "grow " + _text(rng, "ab  e", 240)
        b = a[:150] + _text(rng, "abe ", 100)
        expected = rules.similarity(a, b)
        assert rules.similar(a, b, 0.0, cache={}) == expected
        assert rules.alike(a, b, expected, cache={})


def _titles(rng):
    words = ["grow", "the", "enterprise", "pipeline", "churn", "cut", "our", "by", "10%", "Team",
             "goal", "key", "result", "x"]
    if rng.random() < 0.5:
        return f"{rng.choice(['Team goal', 'Key result', 'Cut churn'])} {rng.randint(0, 999)}"
    return " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))


@pytest.mark.parametrize("at_least", [rules.SIMILAR, 0.6, 0.9, 1.0])
def test_could_match_leaves_out_only_pairs_that_are_not_alike(at_least):
    rng = random.Random(int(at_least * 10))
    kept = 0
    for _ in range(300):
        cache = {}
        title = rules._prepared([_titles(rng)], cache)[0]
        others = rules._prepared([_titles(rng) for _ in range(rng.randint(0, 12))], cache)
        could = rules._could_match(title, others, at_least)
        assert could == sorted(set(could))
        for m, other in enumerate(others):
            if rules.similarity(title.text, other.text) >= at_least:
                assert m in could, (title.text, other.text)
        kept += len(could)
    assert kept  # some pairs are alike, and kept


def test_could_be_alike_gives_the_same_pairs_from_either_side():
    rng = random.Random(5)
    for _ in range(200):
        cache = {}
        titles = rules._prepared([_titles(rng) for _ in range(rng.randint(0, 5))], cache)
        others = rules._prepared([_titles(rng) for _ in range(rng.randint(0, 5))], cache)
        pairs = rules._could_be_alike(titles, others)
        assert pairs == {(i, j) for j, i in rules._could_be_alike(others, titles)}
        for i, a in enumerate(titles):
            for j, b in enumerate(others):
                if rules.similarity(a.text, b.text) >= rules.SIMILAR:
                    assert (i, j) in pairs


def test_titles_prepared_together_read_as_each_alone():
    titles = ["Win the Enterprise market!", "Line one\nline two", "Cut churn by 10% ($2M)",
              "  Étendre   l'offre — vite ", "", "snake_case   words", "Team goal 7"]
    cache = {}
    prepared = rules._prepared([*titles, titles[0]], cache)
    assert [t.text for t in prepared] == [rules._normal(t) for t in [*titles, titles[0]]]
    assert prepared[0] is prepared[-1]  # once per cache
    assert prepared[1].text == "line one line two"
    assert prepared[2].words == {"cut", "churn", "by", "10%", "$2m"}


def _team(pk, title, parent, team=2):
    return Objective(pk, title, team, f"T{team}", "team", parent_id=parent)


@pytest.mark.parametrize("seed", range(3))
def test_copy_paste_scores_are_difflibs(seed):
    rng = random.Random(seed)
    objectives = [Objective(1, "Grow the enterprise pipeline", 1, "Acme", "company")]
    for pk in range(2, 300):
        base = rng.choice(["Grow the enterprise pipeline", "Team goal 17", "Cut churn by 10%"])
        title = base[:rng.randint(0, len(base))] + rng.choice(["", "s", " 2", " now"])
        objectives.append(_team(pk, title, parent=rng.choice((1, 2, 3)), team=pk % 5 + 2))
    by_id = {o.id: o for o in objectives}
    expected = sorted(
        (o.id, round(100 * rules.similarity(o.title, by_id[o.parent_id].title)))
        for o in objectives if o.parent_id
        and rules.similarity(o.title, by_id[o.parent_id].title) >= rules.SIMILAR)
    rules.forget()
    found = rules.copy_paste(Cycle(objectives))
    assert len(expected) > 10
    assert sorted((f.objective_id, int(f.message.split("(")[1].split("%")[0]))
                  for f in found) == expected


@pytest.mark.parametrize("seed", range(3))
def test_kr_as_objective_finds_the_first_similar_key_result_as_difflib_does(seed):
    rng = random.Random(seed)
    objectives = [Objective(1, "Grow", 1, "Acme", "company"),
                  Objective(2, "Keep", 1, "Acme", "company")]
    key_results = []
    for pk in range(10, 40):
        key_results.append(KeyResult(pk, rng.choice((1, 2)), _titles(rng)))
    for pk in range(100, 400):
        kr = rng.choice(key_results)
        title = kr.title if rng.random() < 0.2 else _titles(rng)
        objectives.append(_team(pk, title, parent=rng.choice((1, 2))))
    expected = []
    for o in objectives[2:]:
        for k in key_results:
            if k.objective_id == o.parent_id and rules.similarity(o.title, k.title) >= 0.8:
                expected.append((o.id, k.title))
                break
    rules.forget()
    found = rules.kr_as_objective(Cycle(objectives, key_results))
    assert len(expected) > 10
    assert sorted((f.objective_id, f.message.split("“")[2].split("”")[0]) for f in found) \
        == sorted(expected)


def test_the_rules_ask_difflib_nothing_for_short_titles(monkeypatch):
    def refuse(*args):
        raise AssertionError("difflib ran")

    monkeypatch.setattr(rules, "SequenceMatcher", refuse)
    parent = Objective(1, "Win the enterprise market", 1, "Acme", "company")
    children = [_team(2, "Win the enterprise markets", 1, team=2),
                _team(3, "Win the enterprise market!", 1, team=3),
                _team(4, "Ship SSO", 1, team=4)]
    rules.forget()
    cycle = Cycle([parent, *children])
    assert {f.objective_id for f in rules.copy_paste(cycle)} == {2, 3}
    assert {f.objective_id for f in rules.sibling_overlap(cycle)} == {2, 3}
