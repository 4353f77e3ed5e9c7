"""TF-IDF with cosine similarity, in plain Python: no Django, no outside service.

Documents are token lists; ``Index`` keeps each document's normalised vector and an inverted
index (term -> documents), so a query only touches the documents sharing a word with it.
"""

import math
import re
from collections import Counter, defaultdict

STOP_WORDS = frozenset("""
a an and are as at be been being both but by can could did do does doing for from further had
has have having he her here hers him his how i if in into is it its itself just me more most my
no nor not now of off on once only or other our ours out over own same she should so some such
than that the their theirs them then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours all
any each few new via per across get gets make makes made keep keeps use using used way ways
q1 q2 q3 q4 one two three first second next last every also still well much many less least
""".split())
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def stem(word):
    """A light suffix strip, enough to meet "deploys", "deploying" and "deployed"."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + keep
    return word


def tokens(text):
    """(stem, surface word) pairs of ``text``'s meaningful words."""
    out = []
    for word in WORD.findall((text or "").lower()):
        word = word.split("'")[0]
        if len(word) < 3 or word in STOP_WORDS or word.isdigit():
            continue
        out.append((stem(word), word))
    return out


class Index:
    def __init__(self, docs):
        """``docs``: {doc id: [(stem, surface), ...]} (repeat a token to weigh it more)."""
        self.size = len(docs)
        df = Counter()
        for toks in docs.values():
            df.update({s for s, _ in toks})
        self.idf = {t: math.log((1 + self.size) / (1 + n)) + 1 for t, n in df.items()}
        self.vectors = {}
        self.postings = defaultdict(list)
        surface = defaultdict(Counter)
        for doc, toks in docs.items():
            vec = self._weigh(Counter(s for s, _ in toks))
            self.vectors[doc] = vec
            for term, weight in vec.items():
                self.postings[term].append((doc, weight))
            for s, w in toks:
                surface[s][w] += 1
        self.surface = {s: c.most_common(1)[0][0] for s, c in surface.items()}

    def _weigh(self, counts, idf_default=None):
        vec = {}
        for term, n in counts.items():
            idf = self.idf.get(term, idf_default)
            if idf is not None:
                vec[term] = (1 + math.log(n)) * idf
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {t: w / norm for t, w in vec.items()}

    def query(self, toks):
        """The query's vector over the index's vocabulary (unknown words cannot match)."""
        return self._weigh(Counter(s for s, _ in toks))

    def rank(self, toks, *, allowed=None, boost=None, prior=None, candidates=(), limit=3,
             min_score=0.05):
        """[(doc, score, shared words)] best first. ``allowed(doc)`` filters, ``boost(doc)``
        multiplies the similarity, ``prior(doc)`` is added to it; ``candidates`` are scored
        even when they share no word with the query (their prior can carry them)."""
        q = self.query(toks)
        scores = defaultdict(float)
        for term, qw in q.items():
            for doc, dw in self.postings.get(term, ()):
                scores[doc] += qw * dw
        for doc in candidates:
            scores[doc] += 0.0
        ranked = []
        for doc, score in scores.items():
            if allowed is not None and not allowed(doc):
                continue
            if boost is not None:
                score *= boost(doc)
            if prior is not None:
                score += prior(doc)
            if score >= min_score:
                ranked.append((score, doc))
        ranked.sort(key=lambda x: (-x[0], x[1]))
        out = []
        for score, doc in ranked[:limit]:
            vec = self.vectors[doc]
            shared = sorted((t for t in q if t in vec), key=lambda t: -q[t] * vec[t])
            out.append((doc, round(score, 3), [self.surface.get(t, t) for t in shared[:4]]))
        return out
