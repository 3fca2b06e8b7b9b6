"""Accounts in Build and Rebalance inside real QGIS: an overridden account's workload counts for its
override territory, overrides are never changed, balance fields may name account fields; the
accounts-only scope moves accounts (as new overrides) only to bordering territories."""

from __future__ import annotations

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
