"""The seven steps of the cross-team workflow and their "done when" rules, on plain data.

A step is done when the data says so: each rule returns what is still missing, and the step is
done when nothing is. No Django here, so every rule is tested as a table.
"""

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

TITLES = {
    1: "Shared purpose",
    2: "Stakeholders and owners",
    3: "Kickoff and commitments",
    4: "One integrated plan",
    5: "Cadence",
    6: "Monitoring",
    7: "Retrospective",
}

# When each step is due, relative to the cycle: (anchor, days, how to say it).
DUE = {
    1: ("start", -7, "1-2 weeks before the cycle starts"),
    2: ("start", -7, "1 week before the cycle starts"),
    3: ("start", 3, "in the first days of the cycle"),
    4: ("start", 6, "within 3 days of the kickoff"),
    5: ("start", 7, "the week of the kickoff"),
    6: ("end", 0, "throughout the cycle"),
    7: ("end", 7, "at the end of the cycle"),
}

_SENTENCE_BREAK = re.compile(r"[.!?]+[\"')\]]*\s+(?=[A-Z0-9\"'(])")


def sentence_count(text):
    text = text.strip()
    if not text:
        return 0
    return len(_SENTENCE_BREAK.split(text))


def due_date(step, start, end):
    anchor, days, _ = DUE[step]
    return (start if anchor == "start" else end) + timedelta(days=days)


@dataclass
class MilestoneData:
    title: str
    owner_team: object = None
    due_date: date | None = None
    done: bool = False
    cross_team: bool = False
    waits_on: int = 0  # how many milestones it waits on
    dependencies: int = 0  # how many network dependencies it names
    needs_revisit: bool = False


@dataclass
class StakeholderData:
    team: str
    owner: object = None
    role: str = ""
    commitment: str = "pending"
    escalated: bool = False
    resolved: bool = False


@dataclass
class WorkflowData:
    purpose: str = ""
    impact: str = ""
    signed_off: bool = False
    shared: bool = False
    stakeholders: list = field(default_factory=list)
    kickoff_date: date | None = None
    kickoff_notes: str = ""
    success_measures: int = 0
    kickoff_closed: bool = False
    lead: object = None
    milestones: list = field(default_factory=list)
    sync_frequency: str = ""
    sync_weekday: int | None = None
    sync_time: object = None
    sync_format: str = ""
    dashboard_url: str = ""
    open_blockers: int = 0
    unescalated_blockers: int = 0
    retro_worked: str = ""
    retro_friction: str = ""
    improvements: int = 0
    improvements_without_owner: int = 0
    today: date | None = None


def missing_purpose(w):
    missing = []
    count = sentence_count(w.purpose)
    if count == 0:
        missing.append("Write the shared purpose in one sentence.")
    elif count > 1:
        missing.append("Cut the shared purpose to one sentence.")
    if not w.impact.strip():
        missing.append("Say why it matters: the business impact.")
    if not w.signed_off:
        missing.append("Get it signed off by a member of leadership.")
    if not w.shared:
        missing.append("Share it with the lead of every stakeholder team.")
    return missing


def missing_stakeholders(w):
    missing = []
    if len(w.stakeholders) < 2:
        missing.append("Add every affected team: a shared objective needs at least two.")
    if any(s.owner is None for s in w.stakeholders):
        missing.append("Name one owner, a person, for every team.")
    if w.stakeholders and not any(s.role == "lead" for s in w.stakeholders):
        missing.append("Make one team the lead.")
    return missing


def missing_kickoff(w):
    missing = []
    if w.kickoff_date is None:
        missing.append("Set the kickoff date.")
    if not w.kickoff_notes.strip():
        missing.append("Write the kickoff notes.")
    if w.success_measures == 0:
        missing.append("Agree how success is measured: link at least one key result.")
    pending = [s.team for s in w.stakeholders if s.commitment == "pending"]
    if pending:
        missing.append(f"Waiting for a commitment from {', '.join(pending)}.")
    unresolved = [s.team for s in w.stakeholders if s.commitment == "cannot" and not s.resolved]
    if unresolved:
        missing.append(f"Resolve the escalation: {', '.join(unresolved)} cannot commit.")
    if not missing and not w.kickoff_closed:
        missing.append("Close the kickoff.")
    return missing


def can_close_kickoff(w):
    """Everything but the closing itself: every team answered, every refusal resolved."""
    return [m for m in missing_kickoff(w) if m != "Close the kickoff."]


def missing_plan(w):
    missing = []
    if not w.milestones:
        missing.append("Add the milestones of the plan.")
    no_owner = [m.title for m in w.milestones if m.owner_team is None]
    if no_owner:
        missing.append(f"Give an owner team to: {', '.join(no_owner)}.")
    no_date = [m.title for m in w.milestones if m.due_date is None]
    if no_date:
        missing.append(f"Give a date to: {', '.join(no_date)}.")
    loose = [m.title for m in w.milestones
             if m.cross_team and not (m.waits_on or m.dependencies)]
    if loose:
        missing.append(f"Name what these cross-team milestones wait on: {', '.join(loose)}.")
    if w.lead is None:
        missing.append("Name the alignment lead who oversees the plan.")
    return missing


def missing_cadence(w):
    missing = []
    if not w.sync_frequency:
        missing.append("Choose weekly or every two weeks.")
    if w.sync_weekday is None or w.sync_time is None:
        missing.append("Set the day and time of the sync.")
    if not w.sync_format.strip():
        missing.append("Describe the format of the sync.")
    if not w.dashboard_url.strip():
        missing.append("Link the shared dashboard.")
    return missing


def late(milestone, today):
    return (not milestone.done and milestone.due_date is not None and today is not None
            and milestone.due_date < today)


def missing_monitoring(w):
    missing = []
    n_late = sum(1 for m in w.milestones if late(m, w.today))
    if n_late:
        missing.append(f"{n_late} milestone{'s are' if n_late > 1 else ' is'} late.")
    revisit = sum(1 for m in w.milestones if m.needs_revisit)
    if revisit:
        missing.append(f"{revisit} milestone{'s' if revisit > 1 else ''} to revisit after a "
                       "date moved.")
    n = w.unescalated_blockers
    if n:
        missing.append(f"{n} blocker{'s' if n > 1 else ''} not escalated yet.")
    undone = sum(1 for m in w.milestones if not m.done)
    if w.milestones and undone and not missing:
        missing.append(f"{undone} milestone{'s' if undone > 1 else ''} still to deliver.")
    if not w.milestones:
        missing.append("There is nothing to monitor until the plan has milestones.")
    return missing


def missing_retro(w):
    missing = []
    if not w.retro_worked.strip():
        missing.append("Write down what worked.")
    if not w.retro_friction.strip():
        missing.append("Write down what caused friction.")
    if w.improvements == 0:
        missing.append("Add at least one improvement for next time, with an owner.")
    return missing


RULES = {1: missing_purpose, 2: missing_stakeholders, 3: missing_kickoff, 4: missing_plan,
         5: missing_cadence, 6: missing_monitoring, 7: missing_retro}


@dataclass(frozen=True)
class StepStatus:
    number: int
    title: str
    missing: tuple
    due: date
    due_label: str
    override: str | None = None

    @property
    def done(self):
        return not self.missing or self.override is not None

    @property
    def by_override(self):
        return bool(self.missing) and self.override is not None


def status(w, start, end, overrides=None):
    overrides = overrides or {}
    return [StepStatus(n, TITLES[n], tuple(RULES[n](w)), due_date(n, start, end), DUE[n][2],
                       overrides.get(n)) for n in TITLES]


def revisit_downstream(changed, unblocks):
    """Everything downstream of the milestones in ``changed``: those that wait on them, and on
    those, to any depth. ``unblocks``: {milestone: [milestones waiting on it]}."""
    seen, stack = set(), list(changed)
    while stack:
        for nxt in unblocks.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen - set(changed)
