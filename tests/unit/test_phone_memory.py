"""A number is checked several times on its way through teamsvoice (a bulk item's number as its change is read, then
as it is reserved): core/phone.parse_e164 remembers the numbers that passed, and only those."""

import phonenumbers
import pytest

from teamsvoice.core import phone
from teamsvoice.core.errors import ValidationFailed


def test_a_number_that_passed_is_not_parsed_again_and_a_refusal_is_given_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[str] = []
    parse = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda text, *rest: parses.append(text) or parse(text, *rest))
    phone._remembered_parse.cache_clear()

    first = phone.parse_e164("+32 2 555 01 23", "be")
    assert phone.parse_e164("+32 2 555 01 23", "be") == first and first.e164 == "+3225550123"
    assert parses == ["+32 2 555 01 23"]
    for _ in range(2):  # refused each time, with the same message (refusals are not remembered)
        with pytest.raises(ValidationFailed, match="is a number of BE, not of FR"):
            phone.parse_e164("+32 2 555 01 23", "fr")
        with pytest.raises(ValidationFailed, match="is not a valid E.164 number"):
            phone.parse_e164("+3200", None)
    assert len(parses) == 5
    padded = " " * 100 + "+3225550123"  # longer than any number is written: checked, not remembered
    assert phone.parse_e164(padded).e164 == "+3225550123" and phone.parse_e164(padded).e164 == "+3225550123"
    assert len(parses) == 7 and phone._remembered_parse.cache_info().currsize == 1
