"""The workload index: parsing ``field:weight,…``, the per-unit index and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.plan.index import (
    INDEX_AVERAGE,
    IndexWeights,
    IndexWeightsError,
    check_index_fields,
    parse_index_weights,
    territory_index,
    unit_index,
)


def test_weights_are_read_in_order_and_normalised():
    weights = parse_index_weights(" accounts:0.6, sales:0.1 ; potential : 0.3 ")
    assert weights.fields == ("accounts", "sales", "potential")
    assert weights.weights == (0.6, 0.1, 0.3)
    np.testing.assert_allclose(weights.shares, [0.6, 0.1, 0.3])
    assert parse_index_weights("accounts:60,sales:10,potential:30").shares == pytest.approx([0.6, 0.1, 0.3])
    assert parse_index_weights("a:60%,b:40%").weights == (60.0, 40.0)
    assert weights.text() == "accounts:0.6,sales:0.1,potential:0.3"


def test_empty_text_means_no_index():
    assert parse_index_weights("") is None
    assert parse_index_weights("   ") is None
    assert parse_index_weights(None) is None


def test_a_field_name_may_hold_a_colon():
    assert parse_index_weights("sales:2025:1").fields == ("sales:2025",)


def test_a_zero_weight_is_kept_but_unused():
    weights = parse_index_weights("accounts:1,sales:0")
    assert weights.used_fields == ["accounts"]


@pytest.mark.parametrize("text, words", [
    ("accounts:lots", ["accounts", "not a number"]),
    ("accounts:-0.5,sales:1", ["accounts", "negative"]),
    ("accounts:0,sales:0", ["Every index weight is 0"]),
    ("accounts", ["field:weight"]),
    (":0.5", ["field:weight"]),
    ("accounts:1,accounts:2", ["accounts", "twice"]),
    ("accounts:nan", ["accounts", "finite"]),
    (",,", ["name no field"]),
])
def test_bad_weights_say_what_is_wrong_and_how_to_fix_it(text, words):
    with pytest.raises(IndexWeightsError) as error:
        parse_index_weights(text)
    for word in words:
        assert word in str(error.value)


def test_a_missing_field_is_named_with_the_fields_that_exist():
    weights = parse_index_weights("accounts:0.6,Sales:0.4")
    with pytest.raises(IndexWeightsError, match="“Sales”.*Did you mean “sales”"):
        check_index_fields(weights, ["name", "accounts", "sales"], ["accounts", "sales"])
    with pytest.raises(IndexWeightsError, match="not numeric"):
        check_index_fields(parse_index_weights("name:1"), ["name", "accounts"], ["accounts"])
    check_index_fields(parse_index_weights("accounts:1"), ["accounts"], ["accounts"])


def test_unit_index_by_hand():
    # three units, two territories: shares of accounts (1,1,2)/4 and potential (0,30,10)/40
    values = np.array([[1.0, 0.0], [1.0, 30.0], [2.0, 10.0]])
    weights = IndexWeights(("accounts", "potential"), (0.5, 0.5))
    index = unit_index(values, weights, territory_count=2)
    expected = 2000 * (0.5 * np.array([0.25, 0.25, 0.5]) + 0.5 * np.array([0, 0.75, 0.25]))
    np.testing.assert_allclose(index, expected)
    assert index.sum() == pytest.approx(2 * INDEX_AVERAGE)


def test_territory_index_from_sums_matches_the_units():
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 100, size=(40, 3))
    labels = rng.integers(0, 5, size=40)
    weights = parse_index_weights("a:0.6,b:0.1,c:0.3")
    per_unit = unit_index(values, weights, 5)
    sums = np.array([values[labels == k].sum(axis=0) for k in range(5)])
    from_sums = territory_index(sums, values.sum(axis=0), weights)
    np.testing.assert_allclose(from_sums, np.bincount(labels, per_unit, minlength=5))
    assert from_sums.mean() == pytest.approx(INDEX_AVERAGE)


def test_a_field_with_weight_zero_may_be_all_zero():
    values = np.array([[1.0, 0.0], [3.0, 0.0]])
    index = unit_index(values, parse_index_weights("a:1,b:0"), 1)
    np.testing.assert_allclose(index, [250, 750])


@pytest.mark.parametrize("column, words", [
    ([np.nan, 1.0], ["“b”", "NULL", "Fill"]),
    ([-1.0, 1.0], ["“b”", "negative"]),
    ([0.0, 0.0], ["“b”", "0 for every unit", "weight 0"]),
])
def test_bad_index_values_name_the_field(column, words):
    values = np.column_stack([[1.0, 2.0], column])
    with pytest.raises(IndexWeightsError) as error:
        unit_index(values, parse_index_weights("a:1,b:1"), 2)
    for word in words:
        assert word in str(error.value)


def test_territory_index_of_an_empty_field_is_an_error():
    with pytest.raises(IndexWeightsError, match="“b”"):
        territory_index([[1.0, 0.0], [2.0, 0.0]], [3.0, 0.0], parse_index_weights("a:1,b:1"))
