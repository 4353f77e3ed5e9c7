"""The three kinds of dependency and the words each one uses. Plain data: the form, the pages,
the network map and the notifications read them from here. Propagation treats every kind the
same way (``dependencies.propagation``): the kind says what the other team's part is, not how
risk flows.

- Delegation: the other team does part of our work.
- Shared: both teams pursue one goal together.
- Supporting: the other team enables our work (a platform, a tool, a decision). Every dependency
  recorded before kinds existed is of this kind, the closest to what they asked.
"""

from typing import NamedTuple


class Wording(NamedTuple):
    label: str  # the kind's name, in a tag
    explain: str  # one line on the form
    verb: str  # "<requesting team> <verb> <providing team>"
    line: str  # the network map's word on the line
    ask: str  # the request in one sentence ("{requester}", "{provider}", "{need}")
    fallback: str  # the form's prompt for the plan B


DELEGATION, SHARED, SUPPORTING = "delegation", "shared", "supporting"

WORDING = {
    DELEGATION: Wording(
        "Delegation",
        "The other team does part of our work for us.",
        "delegates to",
        "delegation",
        "{requester} asks {provider} to do part of its work: {need}",
        "If they cannot take this part on, who does it instead, and what slips?",
    ),
    SHARED: Wording(
        "Shared goal",
        "We pursue one goal together; neither team gets there alone.",
        "shares a goal with",
        "shared goal",
        "{requester} asks {provider} to pursue a goal together: {need}",
        "If their half stalls, how far do you get alone, and what do you drop?",
    ),
    SUPPORTING: Wording(
        "Supporting",
        "The other team enables us: a platform, a tool, a decision we build on.",
        "is supported by",
        "supporting",
        "{requester} asks {provider}: {need}",
        "Your plan B: what your team does if this is late or declined.",
    ),
}
DEFAULT = SUPPORTING


def wording(kind):
    """The words of ``kind`` (an unknown value reads as the default kind)."""
    return WORDING.get(kind, WORDING[DEFAULT])


def ask(kind, requester, provider, need):
    """The request in one sentence: what the requesting team asks of the providing team."""
    return wording(kind).ask.format(requester=requester, provider=provider, need=need)
