"""Feedback pages and their review inside real QGIS: every status, the figures against a direct
computation, the outputs (units, requests, replies) and bad input."""

from __future__ import annotations

import html
import re
import zipfile
from collections import deque

import pytest
from feedback_helpers import REVIEW, build_georgia, make_pages, neighbours_of, territory_of, write_feedback
from qgis.core import QgsProcessingException, QgsVectorLayer

TOLERANCE = 50  # wide: balance rejects only the outrageous request below


@pytest.fixture
def georgia_plan(run_algorithm, georgia_layer, tmp_path):
    units, table = build_georgia(run_algorithm, georgia_layer)
    made = make_pages(run_algorithm, units, table, tmp_path / "pages")
    page = open(made["PAGES"][0], encoding="utf-8").read()
    plan_id = re.search(r'"plan_id":"([0-9a-f]{16})"', page).group(1)
    return units, table, plan_id


def connected(members: set[str], neighbours: dict[str, set[str]]) -> bool:
    if not members:
        return True
    start = next(iter(members))
    seen, queue = {start}, deque([start])
    while queue:
        for other in neighbours[queue.popleft()] & members:
            if other not in seen:
                seen.add(other)
                queue.append(other)
    return seen == members


def review(run_algorithm, units, table, folder, tmp_path, **extra):
    return run_algorithm(REVIEW, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table,
        "BALANCE_FIELDS": ["population", "elderly"], "TOLERANCE": TOLERANCE, "UNIT_ID_FIELD": "fips",
        "FEEDBACK_FOLDER": str(folder), "RULE": 0, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_REQUESTS": "TEMPORARY_OUTPUT", "OUTPUT_REPLIES": str(tmp_path / "replies"), **extra})


def test_every_status_with_figures_as_computed_directly(run_algorithm, georgia_plan, tmp_path):
    units, table, plan_id = georgia_plan
    where = territory_of(units)
    touching = neighbours_of(units)
    members = {code: {f for f, c in where.items() if c == code} for code in set(where.values())}
    population = {f["fips"]: f["population"] for f in units.getFeatures()}
    elderly = {f["fips"]: f["elderly"] for f in units.getFeatures()}

    # accepted: a bordering county whose loss keeps its territory in one piece
    accept_unit, accept_to = next(
        (u, where[v]) for u in sorted(where) for v in sorted(touching[u])
        if where[v] != where[u] and u != "13121" and connected(members[where[u]] - {u}, touching))
    # conflict: a county bordering two other territories, asked for by both
    conflict_unit, asking = next(
        (u, sorted({where[v] for v in touching[u]} - {where[u]})[:2]) for u in sorted(where)
        if len({where[v] for v in touching[u]} - {where[u]}) >= 2 and u not in (accept_unit, "13121"))
    # rejected: Fulton (a whole target's worth of people) added to a neighbouring territory
    fulton_to = next(where[v] for v in sorted(touching["13121"]) if where[v] != where["13121"])
    # needs review: a county inside its territory (no other territory to give it to)
    interior = next(u for u in sorted(where) if all(where[v] == where[u] for v in touching[u])
                    and u not in (accept_unit, conflict_unit))

    def row(territory, unit, action, at, **more):
        return {"territory": territory, "unit": unit, "unit_name": f"County {unit}", "kind": "unit",
                "action": action, "reason": "the road", "submitted_by": f"rep of {territory}",
                "submitted_at": at, "plan_id": plan_id, **more}

    folder = tmp_path / "feedback"
    folder.mkdir()
    write_feedback(folder / "feedback_a.csv", [
        row(accept_to, accept_unit, "add", "2026-12-01T08:00:00Z"),
        row(fulton_to, "13121", "add", "2026-12-01T09:00:00Z"),
        row(asking[0], conflict_unit, "add", "2026-12-01T10:00:00Z"),
        row(where[interior], interior, "drop", "2026-12-01T11:00:00Z"),
        row(where[interior], "ACC-1", "add", "2026-12-01T11:30:00Z", kind="account"),
    ])
    write_feedback(folder / "feedback_b.csv", [
        row(asking[1], conflict_unit, "add", "2026-12-01T12:00:00Z"),
        row(asking[1], "99999", "drop", "2026-12-01T13:00:00Z"),
        row("Territory 99", interior, "drop", "2026-12-01T13:30:00Z"),
        row(asking[1], accept_unit, "drop", "2026-12-01T14:00:00Z", plan_id="0123456789abcdef"),
    ])
    result = review(run_algorithm, units, table, folder, tmp_path)
    rows = list(result["OUTPUT_REQUESTS"].getFeatures())
    assert [r["order"] for r in rows] == list(range(1, 10))
    assert [r["submitted_at"] for r in rows] == sorted(r["submitted_at"] for r in rows), "earliest first"
    status = {(r["territory"], r["unit"], r["kind"]): r for r in rows}
    assert status[(accept_to, accept_unit, "unit")]["status"] == "accepted"
    assert status[(fulton_to, "13121", "unit")]["status"] == "rejected"
    assert status[(asking[0], conflict_unit, "unit")]["status"] == "conflict"
    assert status[(asking[1], conflict_unit, "unit")]["status"] == "conflict"
    assert status[(where[interior], interior, "unit")]["status"] == "needs review"
    assert status[(where[interior], "ACC-1", "account")]["status"] == "needs review"
    assert status[(asking[1], "99999", "unit")]["status"] == "invalid"
    assert status[("Territory 99", interior, "unit")]["status"] == "invalid"
    assert "Territory 99" in status[("Territory 99", interior, "unit")]["why"]
    assert status[(asking[1], accept_unit, "unit")]["status"] == "stale"
    assert result["ACCEPTED"] == 1
    assert all(r["why"] for r in rows)

    # the accepted request's figures against a direct computation
    accepted = status[(accept_to, accept_unit, "unit")]
    source = where[accept_unit]
    assert (accepted["from_territory"], accepted["to_territory"]) == (source, accept_to)
    assert accepted["contiguous"] == 1
    for measure, values in (("population", population), ("elderly", elderly)):
        target = sum(values.values()) / 8
        before = {code: sum(values[u] for u in members[code]) for code in (source, accept_to)}
        after = {source: before[source] - values[accept_unit], accept_to: before[accept_to] + values[accept_unit]}
        for side, code in (("from", source), ("to", accept_to)):
            for when, sums in (("before", before), ("after", after)):
                expected = round(100 * (sums[code] - target) / target, 3)
                assert accepted[f"{measure}_{side}_dev_{when}"] == pytest.approx(expected, abs=1e-3)

    # the units: the accepted request applied, the input untouched
    out = {f["fips"]: f for f in result["OUTPUT"].getFeatures()}
    assert out[accept_unit]["territory"] == accept_to and out[accept_unit]["previous_territory"] == source
    assert sum(f["changed"] for f in out.values()) == 1
    assert territory_of(units) == where
    # one reply per territory that wrote, the unknown one included
    replies = sorted(p.name for p in (tmp_path / "replies").iterdir())
    expected = sorted({f"reply_{c.replace(' ', '_')}.html" for c in
                       (accept_to, fulton_to, asking[0], asking[1], where[interior], "Territory 99")})
    assert replies == expected
    reply = (tmp_path / "replies" / f"reply_{accept_to.replace(' ', '_')}.html").read_text(encoding="utf-8")
    assert "accepted" in reply and f"County {accept_unit}" in reply


def test_evaluate_only_accepts_nothing(run_algorithm, georgia_plan, tmp_path):
    units, table, plan_id = georgia_plan
    where = territory_of(units)
    touching = neighbours_of(units)
    unit = next(u for u in sorted(where) if any(where[v] != where[u] for v in touching[u]))
    other = next(where[v] for v in sorted(touching[unit]) if where[v] != where[unit])
    folder = tmp_path / "feedback"
    folder.mkdir()
    write_feedback(folder / "feedback_x.csv", [{"territory": other, "unit": unit, "kind": "unit", "action": "add",
                                                "reason": "r", "plan_id": plan_id}])
    result = review(run_algorithm, units, table, folder, tmp_path, RULE=1)
    (row,) = result["OUTPUT_REQUESTS"].getFeatures()
    assert row["status"] == "needs review" and "would" in row["why"]
    assert result["ACCEPTED"] == 0
    assert sum(f["changed"] for f in result["OUTPUT"].getFeatures()) == 0


def test_hostile_reasons_stay_text_in_replies_and_spreadsheets(run_algorithm, georgia_plan, tmp_path):
    units, table, plan_id = georgia_plan
    where = territory_of(units)
    unit = sorted(where)[0]
    formula = "=cmd|' /C calc'!A0"
    markup = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    folder = tmp_path / "feedback"
    folder.mkdir()
    write_feedback(folder / "feedback_x.csv", [
        {"territory": where[unit], "unit": unit, "kind": "unit", "action": "drop", "reason": "'" + formula,
         "submitted_by": markup, "plan_id": plan_id},
        {"territory": where[unit], "unit": "x" * 50, "kind": "unit", "action": "drop", "reason": "y" * 100_000,
         "plan_id": plan_id},
    ])
    xlsx = tmp_path / "requests.xlsx"
    review(run_algorithm, units, table, folder, tmp_path, OUTPUT_REQUESTS=str(xlsx))
    layer = QgsVectorLayer(str(xlsx), "requests", "ogr")
    reasons = sorted((f["reason"] or "") for f in layer.getFeatures())
    assert formula in reasons, "the ' the page adds before a formula is taken off again"
    assert max(len(r) for r in reasons) == 2000, "a very long reason is cut"
    with zipfile.ZipFile(xlsx) as book:
        sheets = "".join(book.read(n).decode("utf-8") for n in book.namelist() if n.startswith("xl/worksheets/"))
    assert "<f>" not in sheets and "<f " not in sheets, "no cell is a formula"
    reply = (tmp_path / "replies" / f"reply_{where[unit].replace(' ', '_')}.html").read_text(encoding="utf-8")
    assert "<script>alert" not in reply and "<img src=x" not in reply


def test_bad_feedback_gets_a_clear_message_and_writes_nothing(run_algorithm, georgia_plan, tmp_path):
    units, table, _plan_id = georgia_plan
    folder = tmp_path / "feedback"
    folder.mkdir()
    output = tmp_path / "units.gpkg"
    with pytest.raises(QgsProcessingException, match="holds no feedback file"):
        review(run_algorithm, units, table, folder, tmp_path, OUTPUT=str(output))
    (folder / "feedback_x.csv").write_text("territory,unit,comment\nT1,13001,hello\n", encoding="utf-8")
    with pytest.raises(QgsProcessingException, match=r"feedback_x\.csv.*unit_name, kind, action, reason"):
        review(run_algorithm, units, table, folder, tmp_path, OUTPUT=str(output))
    assert not output.exists()
    assert not (tmp_path / "replies").exists() or not any((tmp_path / "replies").iterdir())


def test_pages_are_self_contained_and_escape_names(run_algorithm, georgia_layer, tmp_path):
    units, table = build_georgia(run_algorithm, georgia_layer, count=4)
    units.startEditing()
    index = units.fields().lookupField("fips")
    first = next(units.getFeatures())
    units.changeAttributeValue(first.id(), index, "<b>13001</b>\u2028")
    assert units.commitChanges()
    made = make_pages(run_algorithm, units, table, tmp_path / "pages")
    assert len(made["PAGES"]) == 4 and (tmp_path / "pages" / "index.html").exists()
    for path in made["PAGES"]:
        text = open(path, encoding="utf-8").read()
        assert "Content-Security-Policy" in text and "default-src 'none'" in html.unescape(text)
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), "nothing refers to the web"
        assert re.findall(r"https?://[^\s\"'<>]+", text) == ["http://www.w3.org/2000/svg"]
        assert "<b>13001" not in text
    again = make_pages(run_algorithm, units, table, tmp_path / "again")
    plan_ids = {re.search(r'"plan_id":"(\w+)"', open(p, encoding="utf-8").read()).group(1)
                for p in made["PAGES"] + again["PAGES"]}
    assert len(plan_ids) == 1, "the same alignment gives the same plan id"


def test_a_feedback_file_saved_again_by_a_spreadsheet_with_semicolons_is_read(tmp_path):
    from territory_planner.layers.feedback_files import read_feedback_file

    path = tmp_path / "feedback_T1.csv"
    path.write_text("territory;unit;unit_name;kind;action;reason;submitted_by;submitted_at;plan_id\r\n"
                    "T1;13001;Appling;unit;DROP;'=1+1;Ann;2026-12-01T10:00:00Z;abc\r\n\r\n",
                    encoding="utf-8-sig")
    (request,) = read_feedback_file(str(path))
    assert (request.territory, request.unit, request.action, request.reason) == ("T1", "13001", "drop", "=1+1")
    assert (request.submitted_by, request.source, request.line) == ("Ann", "feedback_T1.csv", 2)


def test_pages_refuse_unit_ids_that_repeat_and_write_nothing(run_algorithm, georgia_layer, tmp_path):
    units, table = build_georgia(run_algorithm, georgia_layer, count=4)
    index = units.fields().lookupField("fips")
    first, second = list(units.getFeatures())[:2]
    units.dataProvider().changeAttributeValues({second.id(): {index: first["fips"]}})
    with pytest.raises(QgsProcessingException, match=r"unit id “\d+” is used by features .* must be unique"):
        make_pages(run_algorithm, units, table, tmp_path / "pages")
    assert not any((tmp_path / "pages").iterdir())
