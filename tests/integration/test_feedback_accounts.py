"""Feedback pages and their review with accounts, inside real QGIS: the pages draw and list the accounts
and count each where it is aligned; the review judges account requests by the units' rule, the account
moving as an override, and writes the accounts with their overrides."""

from __future__ import annotations

import json
import re

import pytest
from accounts_helpers import Account, as_layer, write_accounts, write_grid
from feedback_helpers import PAGES, REVIEW, write_feedback

#: a store off the middle of every unit (the unit stays clickable there) and a key hospital in U00 (T1)
#: kept by T2: T1 40 visits, T2 80, T3 40, T4 40; targets 50
ACCOUNTS = [Account(f"A{row}{col}", (row + 0.3, col + 0.3), 10.0, name=f"Store {row}{col}")
            for row in range(4) for col in range(4)] + [
    Account("KEY", (0.7, 0.7), 40.0, override="T2", name="Key hospital")]


@pytest.fixture
def plan(tmp_path):
    units = write_grid(tmp_path / "units.gpkg")
    accounts = write_accounts(tmp_path / "accounts.gpkg", ACCOUNTS)
    return str(units), str(accounts)


def account_parameters(accounts: str) -> dict:
    return {"ACCOUNTS": accounts, "ACCOUNT_ID_FIELD": "id", "OVERRIDE_FIELD": "override"}


def make_account_pages(run_algorithm, plan, folder) -> dict:
    units, accounts = plan
    return run_algorithm(PAGES, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"], "TOLERANCE": 10,
        "UNIT_ID_FIELD": "uid", "ACCOUNT_NAME_FIELD": "name", "OUTPUT_FOLDER": str(folder),
        **account_parameters(accounts)})


def page_data(path) -> tuple[str, dict]:
    text = open(path, encoding="utf-8").read()
    return text, json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text,
                                      re.S).group(1))


def test_pages_draw_list_and_count_the_accounts_where_they_are_aligned(run_algorithm, plan, tmp_path):
    make_account_pages(run_algorithm, plan, tmp_path / "pages")
    text, data = page_data(tmp_path / "pages" / "feedback_T1.html")
    assert data["measures"][0]["sum"] == 40.0 and data["measures"][0]["target"] == 50.0, "the key counts for T2"
    accounts = {a["id"]: a for a in data["accounts"]}
    # T1's own stores, the stores of its bordering units, and the key hospital standing in its U00
    assert set(accounts) == {"A00", "A01", "A10", "A11", "A02", "A12", "A20", "A21", "KEY"}
    assert (accounts["KEY"]["own"], accounts["KEY"]["override"], accounts["KEY"]["territory"],
            accounts["KEY"]["unit"]) == (False, True, "T2", "U00")
    assert (accounts["A01"]["own"], accounts["A01"]["workloads"], accounts["A02"]["own"]) == (True, [10.0], False)
    units = {u["id"]: u for u in data["units"]}
    assert units["U00"]["workloads"] == [10.0], "a unit carries the accounts that follow it, not the kept one"
    for ident in accounts:
        assert f'data-account="{ident}"' in text and f'data-row-account="{ident}"' in text
    assert 'class="account border kept"' in text and "Your accounts (4)" in text

    _, t2 = page_data(tmp_path / "pages" / "feedback_T2.html")
    key = next(a for a in t2["accounts"] if a["id"] == "KEY")
    assert t2["measures"][0]["sum"] == 80.0 and key["own"] is True
    t2_text = open(tmp_path / "pages" / "feedback_T2.html", encoding="utf-8").read()
    assert 'data-row-account="KEY"' in t2_text and '<circle class="account own kept" data-account="KEY"' not in \
        t2_text, "kept from outside the map: listed, not drawn"


def test_the_review_moves_accounts_as_overrides_by_the_units_rule(run_algorithm, plan, tmp_path):
    units, accounts = plan
    make_account_pages(run_algorithm, plan, tmp_path / "pages")
    plan_id = page_data(tmp_path / "pages" / "feedback_T1.html")[1]["plan_id"]
    folder = tmp_path / "feedback"
    folder.mkdir()

    def row(territory, account, action, at, **more):
        return {"territory": territory, "unit": account, "kind": "account", "action": action,
                "reason": "the route", "submitted_by": f"Rep {territory}", "submitted_at": at,
                "plan_id": plan_id, **more}

    write_feedback(folder / "feedback_T2.csv", [
        row("T2", "A02", "drop", "2026-12-01T09:00:00Z"),   # to T1, beside it: T2 80 → 70, T1 40 → 50
        row("T2", "A03", "drop", "2026-12-01T09:05:00Z"),   # its unit borders no other territory
    ])
    write_feedback(folder / "feedback_T3.csv", [
        row("T3", "A11", "add", "2026-12-01T10:00:00Z"),    # T1 back to 40: further outside
        row("T3", "KEY", "add", "2026-12-01T10:05:00Z"),    # asked by T4 too
        row("T3", "NOPE", "add", "2026-12-01T10:10:00Z"),
        row("T3", "A01", "add", "2026-12-01T10:15:00Z", plan_id="0123456789abcdef"),
    ])
    write_feedback(folder / "feedback_T4.csv", [row("T4", "KEY", "add", "2026-12-01T11:00:00Z")])
    result = run_algorithm(REVIEW, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"], "TOLERANCE": 10,
        "UNIT_ID_FIELD": "uid", "FEEDBACK_FOLDER": str(folder), "RULE": 0, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_REQUESTS": "TEMPORARY_OUTPUT", "OUTPUT_REPLIES": str(tmp_path / "replies"),
        "OUTPUT_ACCOUNTS": "TEMPORARY_OUTPUT", **account_parameters(accounts)})
    verdicts = {(f["territory"], f["unit"]): f for f in result["OUTPUT_REQUESTS"].getFeatures()}
    assert {key: f["status"] for key, f in verdicts.items()} == {
        ("T2", "A02"): "accepted", ("T2", "A03"): "needs review", ("T3", "A11"): "rejected",
        ("T3", "KEY"): "conflict", ("T4", "KEY"): "conflict", ("T3", "NOPE"): "invalid", ("T3", "A01"): "stale"}
    accepted = verdicts[("T2", "A02")]
    assert (accepted["from_territory"], accepted["to_territory"]) == ("T2", "T1")
    assert (accepted["visits_from_dev_before"], accepted["visits_from_dev_after"],
            accepted["visits_to_dev_before"], accepted["visits_to_dev_after"]) == (60.0, 40.0, -20.0, 0.0)
    assert "No account has the id “NOPE”" in verdicts[("T3", "NOPE")]["why"]
    overrides = {f["id"]: f["override"] for f in as_layer(result["OUTPUT_ACCOUNTS"]).getFeatures()}
    assert {k: v for k, v in overrides.items() if v} == {"A02": "T1", "KEY": "T2"}
    assert all(f["changed"] == 0 for f in result["OUTPUT"].getFeatures()), "the units stay"
    assert result["ACCEPTED"] == 1

    # without the accounts a person decides, as before
    unreviewed = run_algorithm(REVIEW, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": [], "TOLERANCE": 10,
        "UNIT_ID_FIELD": "uid", "FEEDBACK_FOLDER": str(folder), "RULE": 0, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_REQUESTS": "TEMPORARY_OUTPUT", "OUTPUT_REPLIES": str(tmp_path / "replies2")})
    statuses = {f["status"] for f in unreviewed["OUTPUT_REQUESTS"].getFeatures() if f["unit"] != "A01"}
    assert statuses == {"needs review"}
