"""The integrated plan as a timeline: a server-rendered SVG Gantt chart with dependency arrows.
No Django: plain data in, SVG text out. Every title is escaped."""

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

LABEL_WIDTH = 230
CHART_WIDTH = 620
ROW = 30
TOP = 34
BAR = 14


@dataclass
class Bar:
    id: int
    title: str
    team: str
    start: date | None
    due: date | None
    done: bool = False
    late: bool = False
    waits_on: tuple = ()


def render(bars, cycle_start, cycle_end, today=None):
    """An SVG document (a string) with one row per milestone, in the given order."""
    lo = cycle_start - timedelta(days=7)
    hi = cycle_end + timedelta(days=7)
    dated = [d for b in bars for d in (b.start, b.due) if d]
    if dated:
        lo, hi = min(lo, *dated), max(hi, *dated)
    span = max(1, (hi - lo).days)

    def x(d):
        return LABEL_WIDTH + round((d - lo).days / span * CHART_WIDTH, 1)

    height = TOP + ROW * max(1, len(bars)) + 10
    width = LABEL_WIDTH + CHART_WIDTH + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="gantt-title">',
        '<title id="gantt-title">Timeline of the integrated plan</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#52606d"/></marker></defs>',
    ]
    # Month ticks and the cycle's bounds.
    tick = date(lo.year, lo.month, 1)
    while tick <= hi:
        if tick >= lo:
            out.append(f'<line x1="{x(tick)}" y1="{TOP - 12}" x2="{x(tick)}" y2="{height - 10}" '
                       'class="tick"/>')
            out.append(f'<text x="{x(tick) + 3}" y="{TOP - 16}" class="tick-label">'
                       f'{tick:%b %Y}</text>')
        tick = date(tick.year + tick.month // 12, tick.month % 12 + 1, 1)
    for d, label in ((cycle_start, "cycle starts"), (cycle_end, "cycle ends")):
        out.append(f'<line x1="{x(d)}" y1="{TOP - 6}" x2="{x(d)}" y2="{height - 10}" '
                   f'class="bound"><title>{label} {d:%d %b}</title></line>')
    if today and lo <= today <= hi:
        out.append(f'<line x1="{x(today)}" y1="{TOP - 6}" x2="{x(today)}" y2="{height - 10}" '
                   'class="today"><title>today</title></line>')

    rows = {b.id: i for i, b in enumerate(bars)}
    ends = {}
    for i, b in enumerate(bars):
        y = TOP + i * ROW
        state = "done" if b.done else "late" if b.late else "planned"
        label = escape(b.title)
        team = escape(b.team or "no owner team")
        out.append(f'<g class="row {state}" data-milestone="{b.id}">')
        short = b.title if len(b.title) <= 34 else b.title[:33].rstrip() + "…"
        out.append(f'<text x="6" y="{y + BAR}" class="label"><title>{label} · {team}</title>'
                   f'{escape(short)}</text>')
        if b.due is None:
            out.append(f'<text x="{LABEL_WIDTH + 4}" y="{y + BAR}" class="undated">no date yet'
                       '</text>')
        else:
            start = b.start or b.due - timedelta(days=3)
            x0, x1 = x(min(start, b.due)), x(b.due)
            out.append(f'<rect x="{x0}" y="{y + 3}" width="{max(4, x1 - x0)}" height="{BAR}" '
                       f'rx="3" class="bar"><title>{label} ({team}): due {b.due:%d %b %Y}, '
                       f'{state}</title></rect>')
            ends[b.id] = (x0, x1, y + 3 + BAR / 2)
        out.append("</g>")
    for b in bars:
        for upstream in b.waits_on:
            if upstream in ends and b.id in ends and upstream in rows:
                _, ux1, uy = ends[upstream]
                dx0, _, dy = ends[b.id]
                mid = max(ux1 + 8, dx0 - 8)
                out.append(f'<path d="M {ux1} {uy} H {mid} V {dy} H {dx0 - 1}" class="arrow" '
                           f'marker-end="url(#arrow)" data-from="{upstream}" data-to="{b.id}"/>')
    out.append("</svg>")
    return "\n".join(out)
