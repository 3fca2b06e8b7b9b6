"""The one meaning of empty values, lock values and default territory names."""

from territory_planner.layers.values import default_names, is_empty_value, lock_value, natural_key


def test_empty_values():
    assert is_empty_value(None) and is_empty_value("") and is_empty_value("  ")
    assert not is_empty_value(0) and not is_empty_value("0") and not is_empty_value("North")


def test_lock_values_have_one_meaning():
    assert lock_value(None) == (False, None) and lock_value("") == (False, None)
    for unlocked in (0, 0.0, "0", "no", "False", "n", False):
        assert lock_value(unlocked) == (False, None), unlocked
    for flag in (1, 2, "1", "yes", "TRUE", "x", "locked", True):
        assert lock_value(flag) == (True, None), flag
    assert lock_value("North") == (True, "North")
    # a value that names a territory locks to it, even when it looks like a flag
    assert lock_value("1", territory_names={"1", "2"}) == (True, "1")
    assert lock_value(" North ", territory_names={"North"}) == (True, "North")


def test_default_names_sort_as_they_read():
    assert default_names([], 3) == ["Territory 1", "Territory 2", "Territory 3"]
    names = default_names(["Atlanta"], 12)
    assert names[:3] == ["Atlanta", "Territory 01", "Territory 02"] and names[-1] == "Territory 11"
    assert sorted(names[1:], key=natural_key) == names[1:]
    assert default_names(["Territory 1"], 2) == ["Territory 1", "Territory 2"]
