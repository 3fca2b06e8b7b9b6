"""The report's performance section: ranked charts, potential against sales, the territories
below the threshold and the opportunities, as HTML a browser shows without any file."""

from __future__ import annotations

import re

import numpy as np


def test_the_section_ranks_lists_and_explains(qgis_app):
    from qgis.PyQt.QtGui import QColor
    from territory_planner.algorithms.report_performance import Opportunity, performance_section
    from territory_planner.core.plan.performance import territory_performance

    labels = np.array([0, 0, 1, 1, 2])
    performance = territory_performance(labels, [50.0, 30.0, 10.0, 10.0, 40.0], [100.0, 100.0, 100.0, 100.0, 50.0],
                                        3, goals=[80.0, 40.0, 50.0])
    names = ["North & co", "South", "East"]
    colours = [QColor("#ff0000"), QColor("#00ff00"), QColor("#0000ff")]
    html = performance_section(performance, names, colours, 90.0,
                               [Opportunity("Unit <1>", "South", None, 100.0, 10.0, 90.0)])
    assert "<h2>Performance</h2>" in html
    assert html.count("<svg") == 3  # attainment, penetration, potential against sales
    # attainment: North 100 %, South 50 %, East 80 %: South and East are below 90 %
    below = re.search(r"Territories below the threshold</h3>(.*?)</ul>", html, re.S).group(1)
    assert "South: 50 % of goal" in below and "East: 80 % of goal" in below and "North" not in below
    assert below.index("South") < below.index("East"), "the worst first"
    assert "North &amp; co" in html and "Unit &lt;1&gt;" in html, "user text is escaped"
    rows = re.findall(r"<tr( class=\"flag\")?><td><span class=\"swatch\"[^>]*></span>([^<]+)</td>", html)
    assert [name for _, name in rows] == ["North &amp; co", "East", "South"], "ranked by attainment"


def test_without_goals_the_threshold_is_a_share_of_the_overall_penetration(qgis_app):
    from qgis.PyQt.QtGui import QColor
    from territory_planner.algorithms.report_performance import performance_section
    from territory_planner.core.plan.performance import territory_performance

    performance = territory_performance([0, 1], [10.0, 50.0], [100.0, 100.0], 2)
    html = performance_section(performance, ["A", "B"], [QColor("red"), QColor("blue")], 90.0, [])
    assert html.count("<svg") == 2
    assert "A: 10 % penetration" in html and "B:" not in html.split("below the threshold</h3>")[1].split("</ul>")[0]
    assert "No unit has untapped potential." in html
