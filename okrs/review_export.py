"""The cycle review as Markdown and CSV (pure: plain data in, text out).

Cells are made safe for their format: a Markdown table cell keeps no pipe or line break, a CSV
cell that a spreadsheet would read as a formula starts with a quote."""

import csv
import io


def score(value):
    return "-" if value is None else f"{value:.2f}"


def rate(value):
    return "-" if value is None else f"{value:.0%}"


def _cell(text):
    return " ".join(str(text).replace("|", "/").split()) or "-"


def _line(text):
    return " ".join(str(text).split())


def _row(cells):
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


SCORE_HEAD = ["Objectives", "Scored", "Average score", "Committed hit", "Aspirational average"]


def _measures(r):
    hit = f"{r['committed_hit']} of {r['committed_assessed']} ({rate(r['hit_rate'])})"
    return [r["objectives"], r["scored"], score(r["average"]),
            hit if r["committed_assessed"] else "-", score(r["aspirational_average"])]


def markdown(data):
    """``data``: the dict that ``views_review.full_review`` builds."""
    c, s, d = data["cycle"], data["summary"], data["diagnosis"]
    out = [f"# Cycle review: {_line(c.name)}", "",
           f"{c.start_date:%Y-%m-%d} to {c.end_date:%Y-%m-%d}. "
           + ("Closed." if c.is_closed else "The cycle is still open: scores are partial."), "",
           "Team and department scores only: no person is scored here.", "",
           "## Summary", "",
           f"- Objectives scored: {s['scored']} of {s['objectives']}",
           f"- Average score: {score(s['average'])}",
           f"- Committed hit rate: {rate(s['hit_rate'])} "
           f"({s['committed_hit']} of {s['committed_assessed']} committed objectives with a "
           "score or a close form)",
           f"- Aspirational average: {score(s['aspirational_average'])} "
           f"({s['aspirational_scored']} scored)",
           f"- Carried over twice: {s['carried_twice']}", "",
           "## Diagnostic", "", f"**{d.headline}.** {d.explanation}", "",
           "## Scores by department and team", "",
           _row(["Department", "Team", *SCORE_HEAD]), _row(["---"] * 7)]
    out.append(_row([data["org_name"], "(company objectives)", *_measures(data["company"])]))
    for dept in data["departments"]:
        out.append(_row([dept["team"].name, "(all teams)", *_measures(dept)]))
        for t in dept["team_rows"]:
            out.append(_row([dept["team"].name, t["team__name"], *_measures(t)]))
    out += ["", "## Carried over twice", ""]
    out += _first(data["carried"], s["carried_twice"], "objectives")
    out += [f"- {_line(o.title)} ({_line(o.team.name)})" for o in data["carried"]] or ["None."]
    out += ["", "## Lessons from close forms", ""]
    out += _first(data["lessons"], data["lessons_total"], "lessons", "search them on the page")
    for lesson in data["lessons"]:
        o = lesson.objective
        out.append(f"### {_line(o.title)} ({_line(o.team.name)}, "
                   f"{lesson.get_outcome_display().lower()})")
        out.append("")
        if lesson.learned:
            out += [f"What we learned: {_line(lesson.learned)}", ""]
        if lesson.differently:
            out += [f"What we would do differently: {_line(lesson.differently)}", ""]
    if not data["lessons"]:
        out += ["No lessons written yet.", ""]
    out += ["## Dependencies that broke", ""]
    out += _first(data["broken"], data["broken_total"], "dependencies",
                  "the page lists them all")
    if data["broken"]:
        out += [_row(["Needed by", "Providing team", "Requesting team", "Need", "Why"]),
                _row(["---"] * 5)]
        out += [_row([dep.needed_by.isoformat(), dep.providing_team.name,
                      dep.requesting_team.name, dep.need, why(dep)])
                for dep in data["broken"]]
    else:
        out.append("None.")
    out += ["", "## Retrospective improvements", ""]
    out += _first(data["improvements"], data["improvements_total"], "improvements",
                  "the page lists them all")
    out += [f"- {_line(i.title)} ({i.get_status_display().lower()}; "
            f"{_line(i.retrospective.workflow.objective.title)})"
            for i in data["improvements"]] or ["None."]
    return "\n".join(out) + "\n"


def _first(shown, total, what, where="the page lists them all"):
    """A line saying a section holds only its first rows."""
    if len(shown) >= total:
        return []
    return [f"The first {len(shown)} of {total} {what}; {where}.", ""]


def why(dep):
    """A broken dependency's reason, with the note that explains it when there is one."""
    from .review import BROKE_REASONS

    note = dep.response_note or dep.last_note or ""
    text = BROKE_REASONS[dep.reason]
    return f"{text}: {_line(note)}" if note else text


def _safe(value):
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


CSV_HEAD = ["department", "team", "objectives", "scored", "average_score", "committed",
            "committed_hit", "committed_with_score_or_close", "committed_hit_rate",
            "aspirational", "aspirational_average"]


def _csv_measures(r):
    def num(v, fmt="{:.2f}"):
        return "" if v is None else fmt.format(v)
    return [r["objectives"], r["scored"], num(r["average"]), r["committed"], r["committed_hit"],
            r["committed_assessed"], num(r["hit_rate"]), r["aspirational"],
            num(r["aspirational_average"])]


def csv_text(data):
    """The scores table: one row for the company's objectives, one per department (all its
    teams) and one per team."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEAD)
    w.writerow([_safe(data["org_name"]), "", *_csv_measures(data["company"])])
    for dept in data["departments"]:
        w.writerow([_safe(dept["team"].name), "", *_csv_measures(dept)])
        for t in dept["team_rows"]:
            w.writerow([_safe(dept["team"].name), _safe(t["team__name"]), *_csv_measures(t)])
    return buf.getvalue()
