"""How often the suggested parents include the real one: each aligned objective's parent is
held out (the objective and everything under it are not candidates) and its own title and why
are the drafting text. precision@1: the real parent comes first; @3: among the first three."""

from dataclasses import dataclass

from okrs.models import Objective

from . import selectors


@dataclass
class Precision:
    cycle: str
    aligned: int
    at_1: int
    at_3: int
    text_at_1: int = 0  # the words alone, without the team-above prior
    text_at_3: int = 0

    def line(self):
        if not self.aligned:
            return f"{self.cycle}: no aligned objective to test"
        n = self.aligned
        return (f"{self.cycle}: {n} aligned objectives, precision@1 {self.at_1 / n:.2f} "
                f"({self.at_1}), precision@3 {self.at_3 / n:.2f} ({self.at_3}); "
                f"words alone: @1 {self.text_at_1 / n:.2f}, @3 {self.text_at_3 / n:.2f}")


def evaluate(org, cycle, *, limit=None):
    corpus = selectors.corpus(org, cycle)
    rows = (Objective.objects.for_org(org).filter(cycle=cycle, parent__isnull=False)
            .exclude(state=Objective.State.RETIRED).order_by("pk")
            .values_list("id", "title", "why", "team_id", "parent_id"))
    if limit:
        rows = rows[:limit]
    result = Precision(cycle.name, 0, 0, 0)
    for pk, title, why, team_id, parent_id in rows:
        if parent_id not in corpus.objectives:
            continue
        toks, below = selectors.query_tokens(title, why), corpus.below(pk)
        ids = [s.id for s in corpus.parents(toks, team_id=team_id, exclude=below, limit=3)]
        text = [s.id for s in corpus.parents(toks, team_id=team_id, exclude=below, limit=3,
                                             structure=False)]
        result.aligned += 1
        result.at_1 += ids[:1] == [parent_id]
        result.at_3 += parent_id in ids
        result.text_at_1 += text[:1] == [parent_id]
        result.text_at_3 += parent_id in text
    return result
