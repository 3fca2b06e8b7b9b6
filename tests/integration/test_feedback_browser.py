"""A rep's feedback page in a real browser, as the rep uses it: opened from disk with the network off,
units clicked on the map, reasons typed, the feedback saved, and the saved file reviewed in QGIS."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from browser import DESKTOP, PHONE, open_chromium
from feedback_helpers import HEADER, REVIEW, build_georgia, make_pages

CODE = "Territory 2"
# HTML that would run script if the page ever put it in as markup, and a spreadsheet formula
HOSTILE = "=cmd|' /C calc'!A0 <img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"


@pytest.fixture
def chromium(tmp_path):
    yield from open_chromium(tmp_path)


def by_id(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def clickable_unit(driver, kind: str) -> str:
    """The id of a unit of class ``kind`` (own or border) whose shape is under the middle of its box,
    so that a click there selects that very unit."""
    return driver.execute_script("""
        const shapes = document.querySelectorAll('#map [data-unit].' + arguments[0]);
        for (const shape of shapes) {
          shape.scrollIntoView({block: 'center'});
          const box = shape.getBoundingClientRect();
          const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
          if (hit && hit.getAttribute('data-unit') === shape.getAttribute('data-unit')) {
            return shape.getAttribute('data-unit');
          }
        }
        return null;""", kind)


def click_unit(driver, unit: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'#map [data-unit="{unit}"]').click()


def test_a_rep_requests_changes_on_the_page_and_the_saved_file_is_reviewed(run_algorithm, georgia_layer, chromium,
                                                                           tmp_path):
    units, table = build_georgia(run_algorithm, georgia_layer)
    pages = tmp_path / "pages"
    made = make_pages(run_algorithm, units, table, pages, DUE_DATE="15 January")
    page = pages / "feedback_Territory_2.html"
    assert str(page) in made["PAGES"]
    chromium.open(page)
    driver = chromium.driver
    assert "15 January" in driver.page_source

    drop, add = clickable_unit(driver, "own"), clickable_unit(driver, "border")
    assert drop and add
    click_unit(driver, drop)
    assert by_id(driver, "request-add").get_attribute("disabled") is not None
    by_id(driver, "request-drop").click()
    assert "reason" in by_id(driver, "message").text.lower(), "a request needs a reason"
    by_id(driver, "request-reason").send_keys("The river cuts it off from my route")
    by_id(driver, "request-drop").click()
    click_unit(driver, add)
    assert by_id(driver, "request-drop").get_attribute("disabled") is not None
    by_id(driver, "request-reason").send_keys(HOSTILE)
    by_id(driver, "request-add").click()

    rows = by_id(driver, "requests").find_elements("css selector", "tbody tr")
    assert len(rows) == 2
    assert rows[1].find_elements("css selector", "td")[2].text == HOSTILE, "the reason is shown as text"
    assert not by_id(driver, "requests").find_elements("css selector", "img, script")
    assert driver.title != "pwned"

    # the workload after the requests, live, against a direct computation
    population = {f["fips"]: f["population"] for f in units.getFeatures()}
    territory = {f["fips"]: f["territory"] for f in units.getFeatures()}
    now = sum(p for fips, p in population.items() if territory[fips] == CODE)
    target = sum(population.values()) / 8
    after = now - population[drop] + population[add]
    shown = by_id(driver, "measure-0").find_element("css selector", ".after-dev").text
    assert shown == f"{100 * (after - target) / target:+.1f} %"

    by_id(driver, "save-feedback").click()
    assert "name" in by_id(driver, "message").text.lower(), "the rep's name is asked for"
    by_id(driver, "submitted-by").send_keys("Rep Two")
    by_id(driver, "save-feedback").click()
    saved = chromium.wait_for_download("feedback_Territory_2.csv")
    assert chromium.outside_requests() == [], "the page made no network request"
    assert chromium.console_errors() == []

    with open(saved, encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == HEADER
    assert [(r[0], r[1], r[3], r[4], r[6]) for r in lines[1:]] == [
        (CODE, drop, "unit", "drop", "Rep Two"), (CODE, add, "unit", "add", "Rep Two")]
    assert lines[2][5] == "'" + HOSTILE, "a spreadsheet reads the formula as text"
    assert len({r[8] for r in lines[1:]}) == 1 and len(lines[1][8]) == 16
    assert lines[1][7].endswith("Z")

    for name, size in (("feedback_page_desktop.png", DESKTOP), ("feedback_page_phone.png", PHONE)):
        shot = chromium.screenshot(name, size)
        print(f"screenshot: {shot}")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= PHONE[0] + 1, \
        "the page fits a phone's width"

    replies = tmp_path / "replies"
    review = run_algorithm(REVIEW, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table,
        "BALANCE_FIELDS": ["population", "elderly"], "TOLERANCE": 10, "UNIT_ID_FIELD": "fips",
        "FEEDBACK_FOLDER": str(chromium.downloads), "RULE": 0, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_REQUESTS": "TEMPORARY_OUTPUT", "OUTPUT_REPLIES": str(replies)})
    requests = {f["unit"]: f for f in review["OUTPUT_REQUESTS"].getFeatures()}
    assert set(requests) == {drop, add}
    assert requests[add]["reason"] == HOSTILE, "the review reads the reason as the rep typed it"
    assert requests[drop]["submitted_by"] == "Rep Two"
    assert all(f["status"] not in ("stale", "invalid") for f in requests.values())
    reply = (replies / "reply_Territory_2.html").read_text(encoding="utf-8")
    assert "<img" not in reply and "&lt;img src=x" in reply


@pytest.mark.parametrize("name", ["feedback_Territory_1.html", "index.html"])
def test_pages_open_without_errors_or_requests(run_algorithm, georgia_layer, chromium, tmp_path, name):
    units, table = build_georgia(run_algorithm, georgia_layer)
    make_pages(run_algorithm, units, table, tmp_path / "pages")
    chromium.open(tmp_path / "pages" / name)
    assert chromium.console_errors() == []
    assert chromium.outside_requests() == []


def test_hostile_unit_and_territory_names_are_shown_as_text(run_algorithm, georgia_layer, chromium, tmp_path):
    from selenium.webdriver.common.by import By
    from territory_planner.compat import STRING, make_field

    units, table = build_georgia(run_algorithm, georgia_layer, count=4)
    hostile = "<img src=x onerror=\"document.title='pwned'\">$& {}"
    units.dataProvider().addAttributes([make_field("name", STRING)])
    units.updateFields()
    index = units.fields().lookupField("name")
    units.dataProvider().changeAttributeValues({f.id(): {index: f"{hostile} {f['fips']}"} for f in units.getFeatures()})
    name = table.fields().lookupField("name")
    table.dataProvider().changeAttributeValues({f.id(): {name: hostile} for f in table.getFeatures()})
    made = make_pages(run_algorithm, units, table, tmp_path / "pages", UNIT_NAME_FIELD="name")
    chromium.open(Path(made["PAGES"][0]))
    driver = chromium.driver
    border = driver.find_element(By.CSS_SELECTOR, "#map [data-unit].border").get_attribute("data-unit")
    driver.find_element(By.CSS_SELECTOR, f'tr[data-row-unit="{border}"]').click()
    selected = by_id(driver, "selected").text
    assert selected.startswith(f"{hostile} {border} ({border}) — bordering, in {hostile}")
    assert not driver.find_elements(By.CSS_SELECTOR, "body img")
    assert driver.title != "pwned" and hostile in driver.title
    assert chromium.outside_requests() == [] and chromium.console_errors() == []
