"""The README's feedback example, from a real run: 20 territories on the bundled Georgia counties,
a feedback page per rep, two reps answering in a real browser (headless Chromium, network off), a
third file edited by hand, the review, and the replies.

Writes build/feedback-example/ (plan, pages, feedback files, requests table, replies) and the
pictures docs/feedback_page.png, docs/feedback_page_phone.png and docs/feedback_reply.png; prints
the review as a Markdown table for the README.

Run: ``.venv/bin/python scripts/feedback_example.py`` (needs chromium, chromium-driver, selenium).
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from plugin_path import make_importable  # noqa: E402

make_importable()
sys.path.append("/usr/share/qgis/python/plugins")

OUT = ROOT / "build" / "feedback-example"
MEASURES = ["population", "elderly"]
DUE = "15 January 2027"
#: Georgia in 20 territories is coarse (Fulton alone is twice a target): a tolerance most can meet
TOLERANCE = 20


def main() -> int:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication, QgsVectorLayer

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    from territory_planner.algorithms.provider import TerritoryProvider

    provider = TerritoryProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    source = QgsVectorLayer(f"{ROOT / 'resources/data/georgia_counties.gpkg'}|layername=georgia_counties",
                            "georgia", "ogr")
    processing.run("territory:buildterritories", {
        "INPUT": source, "TERRITORY_COUNT": 20, "BALANCE_FIELDS": MEASURES, "TOLERANCE": TOLERANCE, "RANDOM_SEED": 4,
        "OUTPUT": str(OUT / "plan.gpkg"), "OUTPUT_TERRITORIES": str(OUT / "territories.gpkg")})
    units = QgsVectorLayer(str(OUT / "plan.gpkg"), "plan", "ogr")
    table = QgsVectorLayer(str(OUT / "territories.gpkg"), "territories", "ogr")
    rep = table.fields().lookupField("rep")
    table.startEditing()
    for n, feature in enumerate(sorted(table.getFeatures(), key=lambda f: f.id())):
        table.changeAttributeValue(feature.id(), rep, f"Rep {n + 1:02d}")
    table.commitChanges()
    pages = OUT / "pages"
    processing.run("territory:feedbackpages", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table, "BALANCE_FIELDS": MEASURES,
        "TOLERANCE": TOLERANCE, "UNIT_ID_FIELD": "fips", "UNIT_NAME_FIELD": "name", "DUE_DATE": DUE,
        "OUTPUT_FOLDER": str(pages)})

    picked = pick_requests(units)
    downloads = OUT / "feedback"
    downloads.mkdir()
    answer_in_browser(pages, downloads, picked)
    with open(downloads / f"feedback_{safe(picked['asking'])}.csv", encoding="utf-8-sig") as saved:
        plan_id = next(csv.DictReader(saved))["plan_id"]
    with open(downloads / "feedback_by_hand.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["territory", "unit", "unit_name", "kind", "action", "reason", "submitted_by",
                         "submitted_at", "plan_id"])
        writer.writerow([picked["third"], picked["third_unit"], "", "unit", "drop", "Printed last month's page",
                         "Rep of " + picked["third"], "2026-12-05T09:00:00Z", "5e0f1a2b3c4d5e6f"])
        writer.writerow([picked["third"], "13999", "", "unit", "add", "Typo in the county code",
                         "Rep of " + picked["third"], "2026-12-05T09:05:00Z", plan_id])

    result = processing.run("territory:reviewfeedback", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table, "BALANCE_FIELDS": MEASURES,
        "TOLERANCE": TOLERANCE, "CONTIGUOUS": True, "UNIT_ID_FIELD": "fips", "FEEDBACK_FOLDER": str(downloads),
        "RULE": 0,
        "OUTPUT": str(OUT / "reviewed.gpkg"), "OUTPUT_REQUESTS": str(OUT / "requests.xlsx"),
        "OUTPUT_REPLIES": str(OUT / "replies")})
    requests = QgsVectorLayer(result["OUTPUT_REQUESTS"], "requests", "ogr")
    print("| # | territory | unit | action | status | why |")
    print("|---|---|---|---|---|---|")
    for f in sorted(requests.getFeatures(), key=lambda f: f["order"]):
        print(f"| {f['order']} | {f['territory']} | {f['unit']} | {f['action']} | {f['status']} | {f['why']} |")
    screenshot_reply(OUT / "replies" / f"reply_{safe(picked['asking'])}.html")
    screenshot_panel(units, downloads, picked)
    print("plan id", plan_id, "; outputs in", OUT)
    from qgis.core import QgsProject

    QgsProject.instance().clear()  # QGIS crashes on exit with layers still loaded
    app.exitQgis()
    return 0


def safe(code: str) -> str:
    return code.replace(" ", "_")


def pick_requests(units) -> dict:
    """Counties for every status, chosen with the review's own rules on this plan."""
    import numpy as np
    from qgis.core import QgsProject
    from territory_planner.core.graph import join_islands, undirected
    from territory_planner.core.metrics import territory_targets
    from territory_planner.core.plan.feedback import Alignment, RequestEvaluator
    from territory_planner.layers.alignment import read_alignment
    from territory_planner.layers.feedback_files import read_unit_ids
    from territory_planner.layers.units import read_units

    read = read_units(units, MEASURES, QgsProject.instance().transformContext())
    alignment = read_alignment(units, "territory", read)
    codes, labels = alignment.names, alignment.labels
    ids = read_unit_ids(units, "fips", read)
    adjacency = join_islands(undirected(read.adjacency, read.count), read.positions).adjacency
    plan = Alignment(codes, labels, ids, read.workloads, territory_targets(read.workloads, len(codes)),
                     np.array([TOLERANCE / 100] * 2), adjacency, True)
    evaluator = RequestEvaluator(plan)

    def neighbours(i):
        return adjacency.indices[adjacency.indptr[i]:adjacency.indptr[i + 1]]

    for k in range(len(codes)):
        own = np.flatnonzero(labels == k)
        bordering = sorted({int(j) for i in own for j in neighbours(i) if labels[j] != k})
        interior = [i for i in own if all(labels[j] == k for j in neighbours(i))]
        droppable = [i for i in own if evaluator.best_destination(i) is not None
                     and evaluator.acceptable(evaluator.best_destination(i))]
        too_heavy = [j for j in bordering if not evaluator.acceptable(evaluator.impact(j, k))]
        heavy = max(too_heavy, key=lambda j: read.workloads[j, 0]) if too_heavy else -1
        shared = [(j, int(labels[m])) for j in bordering for m in neighbours(j)
                  if labels[m] not in (k, labels[j]) and j != heavy]
        if interior and droppable and too_heavy and shared:
            third = next(m for m in range(len(codes)) if m not in (k, shared[0][1]))
            return {"asking": codes[k], "drop": ids[droppable[0]], "interior": ids[interior[0]],
                    "heavy": ids[heavy],
                    "contested": ids[shared[0][0]], "other": codes[shared[0][1]], "third": codes[third],
                    "third_unit": ids[int(np.flatnonzero(labels == third)[0])]}
    raise RuntimeError("no territory has every kind of county the example needs")


def answer_in_browser(pages: Path, downloads: Path, picked: dict) -> None:
    from browser import DESKTOP, PHONE, Browser
    from selenium.webdriver.common.by import By

    browser = Browser(downloads)
    driver = browser.driver
    try:
        browser.open(pages / f"feedback_{safe(picked['asking'])}.html")
        for unit, action, reason in (
                (picked["drop"], "drop", "I never get there: it is an hour past the river"),
                (picked["heavy"], "add", "My biggest accounts moved their offices there"),
                (picked["interior"], "drop", "Too many hospitals for one rep"),
                (picked["contested"], "add", "On my way to my other accounts, along the interstate")):
            driver.find_element(By.CSS_SELECTOR, f'tr[data-row-unit="{unit}"]').click()
            driver.find_element(By.ID, "request-reason").send_keys(reason)
            driver.find_element(By.ID, f"request-{action}").click()
        driver.find_element(By.ID, "submitted-by").send_keys("Rep of " + picked["asking"])
        driver.find_element(By.ID, "save-feedback").click()
        browser.wait_for_download(f"feedback_{safe(picked['asking'])}.csv")
        driver.execute_script("window.scrollTo(0, 0)")
        shutil.copy(browser.screenshot("feedback_page.png", DESKTOP, full_height=False), ROOT / "docs")
        shutil.copy(browser.screenshot("feedback_page_phone.png", PHONE, full_height=False), ROOT / "docs")
        browser.open(pages / f"feedback_{safe(picked['other'])}.html")
        driver.find_element(By.CSS_SELECTOR, f'tr[data-row-unit="{picked["contested"]}"]').click()
        driver.find_element(By.ID, "request-reason").send_keys("It has always been mine")
        driver.find_element(By.ID, "request-add").click()
        driver.find_element(By.ID, "submitted-by").send_keys("Rep of " + picked["other"])
        driver.find_element(By.ID, "save-feedback").click()
        browser.wait_for_download(f"feedback_{safe(picked['other'])}.csv")
        assert browser.outside_requests() == [], browser.outside_requests()
    finally:
        browser.close()


def screenshot_reply(reply: Path) -> None:
    from browser import Browser

    browser = Browser(OUT)
    try:
        browser.open(reply)
        shutil.copy(browser.screenshot("feedback_reply.png", (1200, 700)), ROOT / "docs")
    finally:
        browser.close()


def screenshot_panel(units, folder: Path, picked: dict) -> None:
    """The panel on the same plan: the feedback loaded, the accepted drop selected (previewed) and
    accepted, the heavy county rejected."""
    from dock_helpers import run_synchronously, set_up_dock
    from qgis.core import QgsProject
    from qgis.gui import QgsMapCanvas, QgsMessageBar
    from qgis.PyQt.QtWidgets import QMainWindow
    from territory_planner.ui.dock import TerritoryDock

    class Iface:
        """What the panel asks of QGIS's interface, outside the QGIS desktop: a map canvas, a message bar."""

        def __init__(self):
            self.window = QMainWindow()
            self.canvas = QgsMapCanvas(self.window)
            self.bar = QgsMessageBar(self.window)

        def mapCanvas(self):  # noqa: N802 - QGIS API name
            return self.canvas

        def messageBar(self):  # noqa: N802 - QGIS API name
            return self.bar

        def mainWindow(self):  # noqa: N802 - QGIS API name
            return self.window

    QgsProject.instance().addMapLayer(units)
    dock = TerritoryDock(Iface())
    dock.controller.run_task = run_synchronously
    set_up_dock(dock, units, measures=MEASURES, tolerance=TOLERANCE)
    panel = dock.feedback_panel
    panel.load(str(folder))
    # the panel names units as the plan does (the counties' names)
    names = {str(f["fips"]): str(f["name"]) for f in units.getFeatures()}
    rows = {row[2]: n for n, row in enumerate(panel.rows())}

    def row_of(unit_id: str) -> int:
        return rows[names[unit_id]] if names[unit_id] in rows else rows[f"Unit {unit_id}"]

    panel.select(row_of(picked['heavy']))
    panel.reject_button.click()
    panel.select(row_of(picked['drop']))
    panel.accept_button.click()
    panel.select(row_of(picked['drop']))
    dock.resize(780, 1250)
    dock.show()
    from qgis.core import QgsApplication

    for _ in range(5):  # the folded setup box and the splitter settle before the picture
        QgsApplication.processEvents()
    dock.grab().save(str(ROOT / "docs" / "feedback_panel.png"))
    dock.unload()


if __name__ == "__main__":
    sys.exit(main())
