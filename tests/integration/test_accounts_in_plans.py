"""Accounts in Build and Rebalance inside real QGIS: an overridden account's workload counts for its
override territory, overrides are never changed, balance fields may name account fields; the
accounts-only scope moves accounts (as new overrides) only to bordering territories."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from accounts_helpers import Account, as_layer, digest, rows_by, write_accounts, write_grid
from qgis.core import QgsProcessingException, QgsProcessingFeedback


def one_per_unit(visits: float = 10.0, skip=()) -> list[Account]:
    return [Account(f"U{row}{col}", (row + 0.5, col + 0.5), visits) for row in range(4) for col in range(4)
            if (row, col) not in skip]


def account_sums(units_layer, accounts: list[Account], territory_of_override=None) -> dict[str, float]:
    """Workload per territory counted by hand: overrides at their territory, the rest at their unit's."""
    territory_of_unit = {f["uid"]: f["territory"] for f in units_layer.getFeatures()}
    sums: dict[str, float] = {}
    for account in accounts:
        row, col = int(account.at[0]), int(account.at[1])
        territory = account.override or territory_of_unit[f"U{row}{col}"]
        sums[territory] = sums.get(territory, 0.0) + float(account.visits)
    return sums


def log_of(feedback: QgsProcessingFeedback) -> str:
    return feedback.textLog()


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "in"
    path.mkdir()
    return path


def test_build_counts_a_key_account_for_its_override_territory(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    accounts = one_per_unit() + [Account("KEY", (0.5, 0.5), 40.0, override="T2", name="Key hospital")]
    accounts_path = write_accounts(folder / "accounts.gpkg", accounts)
    before = digest(folder)
    result = run_algorithm("territory:buildterritories", {
        "INPUT": str(units), "TERRITORY_COUNT": 4, "BALANCE_FIELDS": ["visits"], "TOLERANCE": 10.0,
        "TERRITORY_FIELD": "territory", "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id",
        "OVERRIDE_FIELD": "override", "TIME_LIMIT": 10, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})
    out = as_layer(result["OUTPUT"])
    sums = account_sums(out, accounts)
    assert set(sums) == {"T1", "T2", "T3", "T4"}, "the override's code is kept"
    assert all(abs(v - 50.0) <= 5.0 + 1e-9 for v in sums.values()), sums
    territories = rows_by(as_layer(result["OUTPUT_TERRITORIES"]), "territory")
    assert {k: f["visits"] for k, f in territories.items()} == pytest.approx(sums)
    assert territories["T2"]["units"] <= 2, "the key account's workload leaves room for one unit or so"
    assert (territories["T2"]["overrides_in"], territories["T2"]["accounts"]) == (1, 1 + territories["T2"]["units"])
    assert result["MAX_DEVIATION"] <= 10.0
    assert digest(folder) == before, "inputs (and overrides) are never modified"


def test_build_names_overrides_whose_territory_is_gone(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    keys = [Account(f"KEY{k}", (0.5, 0.5), 1.0, override=f"T{k}") for k in (1, 2, 3, 4)]
    accounts_path = write_accounts(folder / "accounts.gpkg", one_per_unit() + keys)
    feedback = QgsProcessingFeedback()
    result = run_algorithm("territory:buildterritories", {
        "INPUT": str(units), "TERRITORY_COUNT": 2, "BALANCE_FIELDS": ["visits"], "TOLERANCE": 10.0,
        "TERRITORY_FIELD": "territory", "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id",
        "OVERRIDE_FIELD": "override", "TIME_LIMIT": 5, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"},
        feedback=feedback)
    codes = set(rows_by(as_layer(result["OUTPUT_TERRITORIES"]), "territory"))
    assert len(codes & {"T1", "T2", "T3", "T4"}) == 2, codes
    gone = sorted({"T1", "T2", "T3", "T4"} - codes)
    log = log_of(feedback)
    line = next(text for text in log.splitlines() if "no longer exist" in text)
    assert f"({', '.join(gone)})" in line, line
    assert all(f"KEY{code[1]}" in line for code in gone) and not any(f"KEY{code[1]}" in line for code in codes)


def test_build_refuses_an_override_naming_no_territory(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    accounts_path = write_accounts(folder / "accounts.gpkg", one_per_unit() + [Account("X", (1.5, 1.5), 1.0,
                                                                                          override="T9")])
    with pytest.raises(QgsProcessingException, match="not a territory of the plan.*“T9”"):
        run_algorithm("territory:buildterritories", {
            "INPUT": str(units), "TERRITORY_COUNT": 4, "BALANCE_FIELDS": ["visits"], "TERRITORY_FIELD": "territory",
            "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id", "OVERRIDE_FIELD": "override",
            "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})


def test_a_balance_field_on_both_layers_is_refused_by_name(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    accounts_path = write_accounts(folder / "accounts.gpkg", one_per_unit(), extra=("population",))
    with pytest.raises(QgsProcessingException, match="“population” is a field of both the units and the accounts"):
        run_algorithm("territory:buildterritories", {
            "INPUT": str(units), "TERRITORY_COUNT": 4, "BALANCE_FIELDS": ["population"],
            "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id", "OUTPUT": "memory:",
            "OUTPUT_TERRITORIES": "memory:"})


def test_units_and_accounts_balanced_together(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    accounts = one_per_unit(skip={(3, 3), (3, 2)}) + [Account("A", (3.5, 3.5), 30.0)]
    accounts_path = write_accounts(folder / "accounts.gpkg", accounts)
    result = run_algorithm("territory:buildterritories", {
        "INPUT": str(units), "TERRITORY_COUNT": 4, "BALANCE_FIELDS": ["population", "visits"], "TOLERANCE": 30.0,
        "TERRITORY_FIELD": "territory", "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id", "TIME_LIMIT": 5,
        "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})
    territories = as_layer(result["OUTPUT_TERRITORIES"])
    assert sum(f["population"] for f in territories.getFeatures()) == 1600.0
    assert sum(f["visits"] for f in territories.getFeatures()) == 170.0
    assert np.isclose(sum(f["visits_tgt"] for f in territories.getFeatures()), 170.0)


def many_per_unit(per_unit: int = 5, visits: float = 2.0, heavy: tuple = ()) -> list[Account]:
    """``per_unit`` accounts of ``visits`` in every unit, twice as many in the units of ``heavy``."""
    out = []
    for row in range(4):
        for col in range(4):
            count = per_unit * (2 if (row, col) in heavy else 1)
            out += [Account(f"A{row}{col}-{i}", (row + 0.1 + 0.8 * (i + 0.5) / count, col + 0.5), visits)
                    for i in range(count)]
    return out


def rebalance(run_algorithm, units, accounts_path, scope: int, feedback=None, **extra):
    parameters = {"INPUT": str(units), "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"],
                  "TOLERANCE": 5.0, "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id",
                  "OVERRIDE_FIELD": "override", "SCOPE": scope, "TIME_LIMIT": 10, "OUTPUT": "memory:",
                  "OUTPUT_TERRITORIES": "memory:"}
    parameters.update(extra)
    return run_algorithm("territory:rebalanceterritories", parameters, feedback=feedback)


def override_sums(units_layer, accounts_layer, override_field: str = "override") -> dict[str, float]:
    """Workload per territory from written layers: an account's override, else its unit's territory."""
    from qgis.core import QgsGeometry

    units = [(f.geometry(), f["territory"]) for f in units_layer.getFeatures()]
    sums: dict[str, float] = {}
    for account in accounts_layer.getFeatures():
        territory = account[override_field]
        if not territory:
            point = QgsGeometry(account.geometry())
            territory = next(t for g, t in units if g.contains(point))
        sums[territory] = sums.get(territory, 0.0) + float(account["visits"])
    return sums


BORDERS = {"T1": {"T2", "T3"}, "T2": {"T1", "T4"}, "T3": {"T1", "T4"}, "T4": {"T2", "T3"}}


def test_rebalance_counts_a_key_account_for_its_override_territory(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    accounts = one_per_unit() + [Account("KEY", (0.5, 0.5), 40.0, override="T2")]
    accounts_path = write_accounts(folder / "accounts.gpkg", accounts)
    before = digest(folder)
    result = rebalance(run_algorithm, units, accounts_path, 0, TOLERANCE=10.0)
    out = as_layer(result["OUTPUT"])
    sums = account_sums(out, accounts)
    assert all(abs(v - 50.0) <= 5.0 + 1e-9 for v in sums.values()), sums
    assert result["CHANGED_UNITS"] >= 3, "T2 (40 + the key account's 40) must give units away"
    assert "OUTPUT_ACCOUNTS" not in result
    territories = rows_by(as_layer(result["OUTPUT_TERRITORIES"]), "territory")
    assert {k: f["visits"] for k, f in territories.items()} == pytest.approx(sums)
    assert digest(folder) == before, "overrides are never changed"


def test_accounts_only_moves_accounts_to_bordering_territories(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    accounts = many_per_unit(heavy={(0, 0), (0, 1), (1, 0), (1, 1)})  # T1 carries 80, the others 40
    accounts[0].override = "T1"  # an existing override (to its own territory) stays as it is
    accounts_path = write_accounts(folder / "accounts.gpkg", accounts)
    before = digest(folder)
    result = rebalance(run_algorithm, units, accounts_path, 1)
    out = as_layer(result["OUTPUT"])
    assert result["CHANGED_UNITS"] == 0
    assert all(f["territory"] == f["previous_territory"] for f in out.getFeatures()), "the units stay"
    moved_layer = as_layer(result["OUTPUT_ACCOUNTS"])
    sums = override_sums(out, moved_layer)
    assert all(abs(v - 50.0) <= 2.5 + 1e-9 for v in sums.values()), sums
    home = {a.ident: f"T{1 + int(a.at[1]) // 2 + 2 * (int(a.at[0]) // 2)}" for a in accounts}
    new = {f["id"]: f["override"] for f in moved_layer.getFeatures() if f["override"]}
    assert new.pop(accounts[0].ident) == "T1"
    assert new, "accounts were moved"
    assert all(code in BORDERS[home[ident]] for ident, code in new.items()), new
    moved_workload = 2.0 * len(new)
    assert moved_workload <= 40.0, "close to the least possible (36)"
    territories = rows_by(as_layer(result["OUTPUT_TERRITORIES"]), "territory")
    assert {k: f["visits"] for k, f in territories.items()} == pytest.approx(sums)
    assert sum(f["overrides_in"] for f in territories.values()) == len(new)
    assert digest(folder) == before, "inputs are never modified"


def test_units_and_accounts_reach_the_band_and_write_the_accounts(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    accounts = many_per_unit(heavy={(0, 0), (0, 1), (1, 0), (1, 1)})
    accounts_path = write_accounts(folder / "accounts.gpkg", accounts)
    result = rebalance(run_algorithm, units, accounts_path, 2)
    sums = override_sums(as_layer(result["OUTPUT"]), as_layer(result["OUTPUT_ACCOUNTS"]))
    assert all(abs(v - 50.0) <= 2.5 + 1e-9 for v in sums.values()), sums


def test_an_accounts_scope_without_accounts_is_refused(run_algorithm, folder):
    units = write_grid(folder / "units.gpkg")
    with pytest.raises(QgsProcessingException, match="give the accounts layer"):
        run_algorithm("territory:rebalanceterritories", {
            "INPUT": str(units), "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["population"], "SCOPE": 1,
            "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})


def test_statistics_count_overrides_for_their_territory_and_list_accounts_without_one(run_algorithm, folder, tmp_path):
    units = write_grid(folder / "units.gpkg")
    accounts = one_per_unit() + [Account("KEY", (0.5, 0.5), 40.0, override="T2", name="Key hospital"),
                                 Account("FAR", (9.0, 9.0), 3.0, name="Far away")]
    accounts_path = write_accounts(folder / "accounts.gpkg", accounts)
    feedback = QgsProcessingFeedback()
    result = run_algorithm("territory:territorystatistics", {
        "INPUT": str(units), "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["population", "visits"],
        "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id", "ACCOUNT_NAME_FIELD": "name",
        "OVERRIDE_FIELD": "override", "OUTPUT": "memory:", "OUTPUT_HTML": str(tmp_path / "report.html")},
        feedback=feedback)
    territories = rows_by(as_layer(result["OUTPUT"]), "territory")
    assert {k: f["visits"] for k, f in territories.items()} == {"T1": 40.0, "T2": 80.0, "T3": 40.0, "T4": 40.0}
    assert {k: f["population"] for k, f in territories.items()} == {k: 400.0 for k in territories}
    assert territories["T2"]["visits_tgt"] == pytest.approx(200.0 / 4), "an account outside every unit counts nowhere"
    assert (territories["T2"]["accounts"], territories["T2"]["overrides_in"]) == (5, 1)
    assert (territories["T1"]["accounts"], territories["T1"]["overrides_out"]) == (4, 1)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Overrides in" in html and "1 accounts stand in no unit: FAR" in html
    assert "1 accounts stand in no unit: FAR" in feedback.textLog()


def test_compare_counts_and_lists_accounts_whose_territory_changes(run_algorithm, folder, tmp_path):
    from accounts_helpers import quadrant

    units = write_grid(folder / "units.gpkg")
    after = write_grid(folder / "after.gpkg", lambda row, col: quadrant(row, 2 if col == 1 else col))
    accounts = one_per_unit() + [Account("KEY", (0.5, 1.5), 40.0, override="T1", name="Key hospital")]
    accounts_path = write_accounts(folder / "accounts.gpkg", accounts)
    result = run_algorithm("territory:comparealignments", {
        "INPUT": str(units), "FIELD_BEFORE": "territory", "FIELD_AFTER": "territory", "INPUT_AFTER": str(after),
        "UNIT_ID_FIELD": "uid", "BALANCE_FIELDS": ["visits"], "ACCOUNTS": str(accounts_path),
        "ACCOUNT_ID_FIELD": "id", "OVERRIDE_FIELD": "override", "OUTPUT": "memory:", "OUTPUT_SUMMARY": "memory:",
        "OUTPUT_ACCOUNTS": "memory:", "OUTPUT_HTML": str(tmp_path / "compare.html")})
    assert result["CHANGED_UNITS"] == 4
    assert result["CHANGED_ACCOUNTS"] == 4, "the key account keeps its override territory"
    changed = rows_by(as_layer(result["OUTPUT_ACCOUNTS"]), "id")
    assert {k: (f["from_territory"], f["to_territory"]) for k, f in changed.items()} == {
        "U01": ("T1", "T2"), "U11": ("T1", "T2"), "U21": ("T3", "T4"), "U31": ("T3", "T4")}
    summary = rows_by(as_layer(result["OUTPUT_SUMMARY"]), "territory")
    assert (summary["T1"]["visits_before"], summary["T1"]["visits_after"]) == (80.0, 60.0)
    assert (summary["T2"]["visits_gained"], summary["T2"]["visits_after"]) == (20.0, 60.0)
    html = (tmp_path / "compare.html").read_text(encoding="utf-8")
    assert "Accounts that change territory" in html and "U21" in html and "Key hospital" not in html


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed")
def test_packets_list_the_overrides_both_ways_with_their_workload(run_algorithm, folder, tmp_path):
    units = write_grid(folder / "units.gpkg")
    accounts = one_per_unit() + [Account("KEY", (0.5, 0.5), 40.0, override="T2", name="Key hospital"),
                                 Account("PIN", (3.5, 3.5), 7.0, override="T4", name="Pinned store")]
    accounts_path = write_accounts(folder / "accounts.gpkg", accounts)
    out = tmp_path / "packets"
    result = run_algorithm("territory:territorypackets", {
        "INPUT": str(units), "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"],
        "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id", "ACCOUNT_NAME_FIELD": "name",
        "OVERRIDE_FIELD": "override", "OUTPUT_FOLDER": str(out)})
    assert result["PACKETS"] == 4

    def text(code: str) -> str:
        return subprocess.run(["pdftotext", "-layout", str(out / f"territory_{code}.pdf"), "-"], check=True,
                              capture_output=True, text=True).stdout

    def one_line(page: str) -> str:
        return " ".join(page.split())

    t2, t1, t4 = one_line(text("T2")), one_line(text("T1")), one_line(text("T4"))
    assert "Accounts outside your area that you keep (1)" in t2
    assert "Key hospital (KEY) T1 40 " in t2, t2
    assert "Accounts in your area served by another rep (0)" in t2
    assert "Accounts in your area served by another rep (1)" in t1 and "Key hospital (KEY) T2 40" in t1
    assert "Accounts outside your area that you keep (0)" in t1
    assert "Pinned store" not in t4, "an override to its own territory is neither kept from outside nor lost"
    assert "visits 80 52" in t2, "the workload counts the key account for T2 (80 against a target of 207 / 4)"


def test_a_table_of_accounts_counts_by_unit_id_in_rebalance_and_statistics(run_algorithm, folder, tmp_path):
    from osgeo import ogr

    units = write_grid(folder / "units.gpkg")
    table = [Account(100 + k, None, 10.0, unit=f"U{row}{col}") for k, (row, col) in
             enumerate((r, c) for r in range(4) for c in range(4))]
    table.append(Account(200, None, 40.0, unit="U00", override="T2"))
    accounts_path = write_accounts(folder / "accounts.gpkg", table, epsg=None, id_kind=ogr.OFTInteger)
    by_id = {"ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id", "OVERRIDE_FIELD": "override",
             "UNIT_ID_FIELD": "uid", "ACCOUNT_UNIT_FIELD": "zip"}
    statistics = run_algorithm("territory:territorystatistics", {
        "INPUT": str(units), "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"], "OUTPUT": "memory:",
        "OUTPUT_HTML": str(tmp_path / "report.html"), **by_id})
    assert {k: f["visits"] for k, f in rows_by(as_layer(statistics["OUTPUT"]), "territory").items()} == {
        "T1": 40.0, "T2": 80.0, "T3": 40.0, "T4": 40.0}
    rebalanced = run_algorithm("territory:rebalanceterritories", {
        "INPUT": str(units), "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"], "TOLERANCE": 10.0,
        "TIME_LIMIT": 10, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:", **by_id})
    territories = rows_by(as_layer(rebalanced["OUTPUT_TERRITORIES"]), "territory")
    assert all(abs(f["visits"] - 50.0) <= 5.0 + 1e-9 for f in territories.values()), \
        {k: f["visits"] for k, f in territories.items()}
