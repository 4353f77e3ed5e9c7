"""End-of-cycle words for templates: an objective's score band."""

from django import template

from okrs import scoring

register = template.Library()


@register.filter
def score_band(objective):
    """{"key": "strong", "words": "A strong result: ..."} for a scored objective, else None."""
    found = scoring.band(objective.commitment, objective.score)
    return None if found is None else {"key": found[0], "words": found[1]}
