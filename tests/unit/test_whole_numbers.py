"""Ids, counts and codes typed as text: ASCII digits within the 64-bit range, nothing else. `str.isdigit` also
takes "²" (which `int` refuses: a 500 before) and other scripts' digits ("١" read as 1: the wrong object), and
`int` refuses more than 4300 digits; each place that reads such a value now answers a 400 or "not found"."""

import pytest

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import LONG_MAX, is_digits, whole_number
from teamsvoice.core.phone import calling_code, parse_number
from teamsvoice.domain.jobs.catalogue import parse_ref
from teamsvoice.domain.teams_users.bulk_csv import parse_csv


def test_whole_numbers_are_ascii_digits_within_64_bits() -> None:
    assert whole_number("0") == 0 and whole_number("42") == 42 and whole_number(str(LONG_MAX)) == LONG_MAX
    for text in ("", " 1", "-1", "+1", "1.0", "²", "\u0661", "１", "1" * 5000, str(LONG_MAX + 1)):
        assert whole_number(text) is None, text
    assert is_digits("0123") and not is_digits("12²") and not is_digits("")


@pytest.mark.parametrize("ref", ["bulk:²", "webhook:\u0661", "1" * 5000, "bulk:0", "bulk:-1"])
def test_a_job_reference_with_no_whole_number_is_refused(ref: str) -> None:
    with pytest.raises(ValidationFailed, match="expected <kind>:<id>"):
        parse_ref(ref)


@pytest.mark.parametrize("code", ["+²", "+\u0661", "+" + "1" * 5000, "+1234"])
def test_a_calling_code_is_one_to_three_ascii_digits(code: str) -> None:
    with pytest.raises(ValidationFailed, match="countryCode"):
        calling_code(code)
    with pytest.raises(ValidationFailed, match="digits only"):
        parse_number(32, "2²34567")


def test_a_csv_field_past_the_csv_modules_limit_is_a_400_naming_the_line() -> None:
    with pytest.raises(ValidationFailed, match=r"CSV: line 2: field larger than field limit"):
        parse_csv("upn\n" + "a" * 200_000 + "\n")
