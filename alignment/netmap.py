"""The network map: teams on a circle, edges for shared objectives, shared key results and
dependencies. No Django: plain data in, SVG text out, every label escaped."""

import math
from dataclasses import dataclass
from html import escape

from dependencies.kinds import WORDING

SIZE = 760
NODE_R = 9


@dataclass(frozen=True)
class Node:
    id: int
    name: str
    href: str
    health: str = ""
    links: int = 0
    team_type: str = ""  # product / enabling / shared; "" for the company and grouped units


@dataclass(frozen=True)
class Edge:
    a: int
    b: int
    kind: str  # whole / objective / key_result / dependency
    label: str
    href: str
    health: str = ""
    count: int = 1
    # A dependency's kind (delegation / shared / supporting; ``dependencies.kinds``), "" when
    # the line sums several.
    dep_kind: str = ""


# Team types: a circle for a product team, a square for an enabling team, a diamond for a
# shared service (the legend says so).
TYPE_LABEL = {"product": "product team", "enabling": "enabling team",
              "shared": "shared service"}

MAX_TEAMS = 30


@dataclass(frozen=True)
class Unit:
    """A unit of the organization tree, as the map needs it (nested-set bounds included)."""
    id: int
    name: str
    parent: int | None
    tree: int
    lft: int
    rght: int
    is_company: bool = False
    team_type: str = ""


def view_of(units, open_id=None, limit=MAX_TEAMS):
    """What the map draws below the open unit (the company unless ``open_id`` names one):
    every unit inside it while they are ``limit`` or fewer, else its direct children, each
    standing for everything inside it. Returns (the open unit, the units drawn, a mapping from
    every unit inside to the one drawn for it, whether units were grouped)."""
    by_id = {u.id: u for u in units}
    root = by_id.get(open_id) or next((u for u in units if u.parent is None), None)
    if root is None:
        return None, [], {}, False

    def inside(u, top):
        return u.tree == top.tree and top.lft < u.lft and u.rght < top.rght

    below = [u for u in units if inside(u, root) and not u.is_company]
    if len(below) <= limit:
        return root, below, {u.id: u.id for u in below}, False
    shown = [u for u in below if u.parent == root.id]
    group_of = {}
    for top in shown:
        group_of[top.id] = top.id
        for u in below:
            if inside(u, top):
                group_of[u.id] = top.id
    return root, shown, group_of, True


KIND_LABEL = {"whole": "whole OKR", "objective": "objective", "key_result": "key result",
              "dependency": "depends on"}
# A dependency's line says its kind.
DEPENDENCY_LABEL = {kind: wording.line for kind, wording in WORDING.items()}


def layout(nodes):
    """Positions on a circle, in the given order; big enough that 30 names stay apart."""
    n = max(1, len(nodes))
    radius = SIZE / 2 - 175  # room for a label of about 24 characters on either side
    centre = SIZE / 2
    return {node.id: (round(centre + radius * math.cos(2 * math.pi * i / n - math.pi / 2), 1),
                      round(centre + radius * math.sin(2 * math.pi * i / n - math.pi / 2), 1))
            for i, node in enumerate(nodes)}


MAX_EDGES = 60


def busiest(edges, limit=MAX_EDGES):
    """The ``limit`` edges that stand for the most links (a summed map of many units would
    otherwise be a solid disc of lines), and how many were left out."""
    ranked = sorted(edges, key=lambda e: (-e.count, e.a, e.b, e.kind))
    return ranked[:limit], max(0, len(ranked) - limit)


def render(nodes, edges, *, summed=False):
    """The map as SVG. ``summed``: each edge stands for ``count`` links between two units; it
    says so in its title and carries no text on the line."""
    pos = layout(nodes)
    centre = SIZE / 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="netmap" viewBox="0 0 {SIZE} {SIZE}"'
           f' width="{SIZE}" height="{SIZE}" role="img" aria-labelledby="netmap-title">',
           '<title id="netmap-title">Teams and the links between them</title>',
           '<defs><marker id="dep-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6"'
           ' markerHeight="6" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="#52606d"/>'
           '</marker></defs>']
    seen_pairs = {}
    for e in edges:
        if e.a not in pos or e.b not in pos:
            continue
        (x1, y1), (x2, y2) = pos[e.a], pos[e.b]
        pair = tuple(sorted((e.a, e.b)))
        k = seen_pairs.get(pair, 0)
        seen_pairs[pair] = k + 1
        # Bend towards the centre, a little more for each further edge between the same pair.
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        pull = 0.15 + 0.12 * k
        cx, cy = mx + (centre - mx) * pull, my + (centre - my) * pull
        lx, ly = (mx + cx) / 2, (my + cy) / 2
        kind = DEPENDENCY_LABEL.get(e.dep_kind) or KIND_LABEL.get(e.kind, e.kind)
        if summed:
            label = escape(f"{e.count} link{'s' if e.count != 1 else ''} ({kind})")
        else:
            label = escape(f"{kind}: {e.label}"
                           + (f" (+{e.count - 1} more)" if e.count > 1 else ""))
        text = "" if summed else (f'<text x="{round(lx, 1)}" y="{round(ly, 1)}" class="edge-label">'
                                  f'{escape(kind)}</text>')
        marker = ' marker-end="url(#dep-arrow)"' if e.kind == "dependency" else ""
        out.append(
            f'<a href="{escape(e.href)}" class="edge kind-{e.kind}'
            f'{" dep-" + e.dep_kind if e.dep_kind in DEPENDENCY_LABEL else ""} '
            f'health-{e.health or "none"}">'
            f'<title>{label}</title>'
            f'<path d="M {x1} {y1} Q {round(cx, 1)} {round(cy, 1)} {x2} {y2}"{marker}/>'
            f'{text}</a>')
    for node in nodes:
        x, y = pos[node.id]
        anchor = "start" if x >= centre + 1 else "end" if x <= centre - 1 else "middle"
        dx = 14 if anchor == "start" else -14 if anchor == "end" else 0
        dy = 4 if anchor != "middle" else (-14 if y < centre else 22)
        lonely = " lonely" if node.links == 0 else ""
        kind = TYPE_LABEL.get(node.team_type, "")
        data_type = f' data-type="{escape(node.team_type)}"' if node.team_type else ""
        shape = (f'<rect x="{x - NODE_R}" y="{y - NODE_R}" width="{2 * NODE_R}" '
                 f'height="{2 * NODE_R}" rx="2"/>' if node.team_type == "enabling" else
                 f'<path d="M {x} {y - NODE_R - 2} L {x + NODE_R + 2} {y} L {x} '
                 f'{y + NODE_R + 2} L {x - NODE_R - 2} {y} z"/>'
                 if node.team_type == "shared" else f'<circle cx="{x}" cy="{y}" r="{NODE_R}"/>')
        out.append(
            f'<a href="{escape(node.href)}" class="team health-{node.health or "none"}{lonely}" '
            f'data-team="{node.id}"{data_type}><title>{escape(node.name)}'
            f'{f" ({kind})" if kind else ""}: '
            f'{node.links} link{"s" if node.links != 1 else ""}</title>'
            f'{shape}'
            f'<text x="{x + dx}" y="{y + dy}" text-anchor="{anchor}">{escape(node.name)}</text>'
            '</a>')
    out.append("</svg>")
    return "\n".join(out)
