"""UID syntax (PS3.5 §9.1): digits and dots, no empty components, no leading zeros, at most 64 characters."""

import pytest

from apps.dicom.uids import is_valid_uid, split_uid_list, uid_problem


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2.1", "0", "1.0.2", "2.25." + "9" * 59])
def test_well_formed_uids_are_valid(uid):
    assert is_valid_uid(uid)


@pytest.mark.parametrize(
    ("uid", "problem"),
    [
        ("", "empty"),
        ("1.2.abc", "only digits and dots"),
        ("1.2.3 ", "only digits and dots"),
        ("1..2", "non-empty numeric components"),
        ("1.02.3", "without leading zeros"),
        (".1.2", "non-empty"),
        ("1.2.", "non-empty"),
        ("1." + "2" * 63, "at most 64"),
    ],
)
def test_malformed_uids_are_refused_with_the_reason(uid, problem):
    assert problem in uid_problem(uid)


def test_uid_lists_split_on_commas_and_backslashes():
    assert split_uid_list("1.2.3, 1.2.4\\1.2.5,") == ["1.2.3", "1.2.4", "1.2.5"]
