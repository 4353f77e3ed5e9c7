"""The cheap bounds before difflib are exact: ``similar`` and ``alike`` answer what
``similarity`` (difflib on every pair) answers, on titles made to share prefixes, suffixes,
repeated characters and words, as generated organizations' titles do."""

import random

import pytest

from alignment import rules


def _lcs(a, b):
    row = [0] * (len(b) + 1)
    for ch in a:
        diagonal = 0
        for j, other in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if ch == other else max(row[j], row[j - 1])
    return row[-1]


def _titles(rng):
    stems = ["Team goal", "Key result", "Grow the enterprise pipeline", "Cut churn", "aab",
             "Ship feature", ""]
    pick = rng.random()
    if pick < 0.5:
        return f"{rng.choice(stems)} {rng.randint(0, 99999)}".strip()
    if pick < 0.8:
        return "".join(rng.choice("aab c") for _ in range(rng.randint(0, 12)))
    words = ["grow", "the", "pipeline", "enterprise", "churn", "cut", "our", "by", "10%"]
    return " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))


@pytest.mark.parametrize("seed", range(4))
def test_similar_and_alike_answer_what_difflib_answers(seed):
    rng = random.Random(seed)
    for _ in range(3000):
        a, b = _titles(rng), _titles(rng)
        if rng.random() < 0.3:  # a small edit of the same title
            b = a[:rng.randint(0, len(a))] + rng.choice(["", "1", "x", "9 "]) + a[
                rng.randint(0, len(a)):]
        at_least = rng.choice((rules.SIMILAR, 0.6, 0.9))
        exact = rules.similarity(a, b)
        expected = exact if exact >= at_least else None
        assert rules.similar(a, b, at_least, cache={}) == expected, (a, b)
        assert rules.alike(a, b, at_least, cache={}) is (expected is not None), (a, b)


def test_the_longest_common_subsequence_is_a_plain_dynamic_programme():
    rng = random.Random(9)
    for _ in range(3000):
        a = "".join(rng.choice("ab1 ") for _ in range(rng.randint(0, 14)))
        b = "".join(rng.choice("ab1 ") for _ in range(rng.randint(0, 14)))
        if rng.random() < 0.5:
            common = "".join(rng.choice("ab1") for _ in range(rng.randint(1, 5)))
            a, b = common + a + common[::-1], common + b + common[::-1]
        ta, tb = rules._Title(a), rules._Title(b)
        assert rules._lcs_length(ta, tb) == _lcs(ta.text, tb.text), (a, b)
