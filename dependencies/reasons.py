"""The three reasons for a health, in words. Plain data in, plain sentences out: no Django.

Every place that explains a health (the Why page, the objective page, alerts, the weekly
digest) keeps three reasons apart, and words each so that it is true:

1. ``own``: its own check-ins and pace. For a key result, its check-ins; for an objective, its
   own team's key results.
2. ``rollup``: its key results and aligned objectives: another team's key result on it (named
   with that team), an aligned objective below it, a key result that feeds a shared one.
3. ``upstream``: what it depends on. An upstream slip makes it at risk, never off track.

A stored cause path (``risk_causes``) runs from the root cause to the node's direct input; its
root carries ``reason``: "rollup" or "dependency" (``dependencies.propagation``).
"""

LABEL = {"on_track": "on track", "at_risk": "at risk", "off_track": "off track"}
OWN, ROLLUP, UPSTREAM = "own", "rollup", "upstream"
TITLES = {
    OWN: "Its own check-ins and pace",
    ROLLUP: "Its key results and aligned objectives",
    UPSTREAM: "What it depends on upstream",
}


def label(health):
    return LABEL.get(health, "unknown")


def possessive(name):
    return f"{name}’" if name.endswith("s") else f"{name}’s"


def quoted(title):
    return f"“{title}”"


def cause_sentence(path, *, team=None):
    """One stored cause path in a sentence that says which reason it is. ``team``: the team of
    the node the path leads to, so a key result of that same team is not called another's."""
    nodes = [n for n in path if not n.get("gap")]
    if not nodes:
        return ""
    root, direct = nodes[0], nodes[-1]
    what = (f"{quoted(root.get('title', ''))} ({root.get('team', '')}) is "
            f"{label(root.get('health'))}")
    through = f", through {quoted(direct.get('title', ''))}" if len(nodes) > 1 else ""
    if root.get("reason") == "dependency":
        return f"Upstream dependency: {what}{through}."
    if len(nodes) == 1 and root.get("kind") == "o":
        return f"Aligned objective: {what}."
    if len(nodes) == 1 and root.get("team") != team:
        return f"Key result of another team: {what}."
    return f"Key result: {what}{through}."
