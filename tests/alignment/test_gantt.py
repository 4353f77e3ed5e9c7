"""The timeline SVG: bars placed by date, arrows for what waits on what, titles escaped."""

import re
from datetime import date

from alignment.gantt import CHART_WIDTH, LABEL_WIDTH, Bar, render

START, END = date(2027, 1, 1), date(2027, 3, 31)


def rect_x(svg, milestone):
    row = re.search(rf'data-milestone="{milestone}">(.*?)</g>', svg, re.S).group(1)
    x, width = re.search(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', row).groups()
    return float(x), float(x) + float(width)


def test_bars_are_placed_by_date():
    svg = render([Bar(1, "Early", "Sales", date(2027, 1, 5), date(2027, 1, 20)),
                  Bar(2, "Late", "Eng", date(2027, 3, 1), date(2027, 3, 20))], START, END)
    early, late = rect_x(svg, 1), rect_x(svg, 2)
    assert LABEL_WIDTH <= early[0] < early[1] < late[0] < late[1] <= LABEL_WIDTH + CHART_WIDTH
    # Proportional: 15 days and 19 days wide.
    assert abs((early[1] - early[0]) / (late[1] - late[0]) - 15 / 19) < 0.05


def test_an_arrow_runs_from_what_is_waited_on_to_what_waits():
    svg = render([Bar(1, "API", "Eng", None, date(2027, 2, 1)),
                  Bar(2, "Launch", "Sales", date(2027, 2, 10), date(2027, 2, 28), waits_on=(1,))],
                 START, END)
    arrow = re.search(r'<path d="M ([\d.]+) ([\d.]+) H [\d.]+ V ([\d.]+) H ([\d.]+)" '
                      r'class="arrow" marker-end="url\(#arrow\)" data-from="1" data-to="2"/>', svg)
    assert arrow, svg
    x_from, _, _, x_to = (float(v) for v in arrow.groups())
    assert x_from == rect_x(svg, 1)[1]
    assert x_to == rect_x(svg, 2)[0] - 1


def test_titles_are_escaped():
    svg = render([Bar(1, '<script>alert("x")</script> & co', "R&D <team>", None,
                      date(2027, 2, 1))], START, END)
    assert "<script>" not in svg and "R&D <team>" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in svg
    assert "R&amp;D &lt;team&gt;" in svg


def test_undated_and_late_and_done_milestones_are_marked():
    svg = render([Bar(1, "No date", "", None, None),
                  Bar(2, "Late one", "Eng", None, date(2027, 1, 10), late=True),
                  Bar(3, "Done one", "Eng", None, date(2027, 1, 12), done=True)],
                 START, END, today=date(2027, 1, 15))
    assert "no date yet" in svg
    assert 'class="row late" data-milestone="2"' in svg
    assert 'class="row done" data-milestone="3"' in svg
    assert 'class="today"' in svg
