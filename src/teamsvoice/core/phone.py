"""Phone numbers: E.164 validation and ISO 3166 country checks, shared by both API families."""

import functools
from dataclasses import dataclass

import phonenumbers
import pycountry

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import is_digits, whole_number

_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "geographic",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "geographic",
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
    phonenumbers.PhoneNumberType.UAN: "uan",
}


@dataclass(frozen=True)
class ParsedNumber:
    e164: str
    iso_code: str
    country_code: str
    nsn: str
    number_type: str


def calling_code(raw: object, field: str = "countryCode") -> int:
    """`"+32"`, `"32"` or `32`: a country calling code that numbering plans know."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ValidationFailed(f"{field}: must be a country calling code such as \"+32\"")
    text = str(raw).strip().removeprefix("+")
    code = whole_number(text) if len(text) <= 3 else None  # calling codes have 1 to 3 digits
    if code is None or phonenumbers.region_codes_for_country_code(code) in ((), ("ZZ",)):
        raise ValidationFailed(f"{field}: '{str(raw)[:40]}' is not a country calling code")
    return code


def parse_number(code: int, nsn: object, iso_code: str | None = None) -> ParsedNumber:
    if isinstance(nsn, bool) or not isinstance(nsn, (str, int)):
        raise ValidationFailed("numbers: each number must be a national significant number (string or integer)")
    digits = str(nsn).strip()
    if not is_digits(digits):
        raise ValidationFailed(f"numbers: '{nsn}' is not a national significant number (digits only)")
    return parse_e164(f"+{code}{digits}", iso_code)


def parse_e164(raw: str, iso_code: str | None = None) -> ParsedNumber:
    """Validates a full number (E.164) and, when given, that it belongs to the ISO 3166 country `iso_code`. A number
    is checked several times on its way (a bulk item's number as its change is read, then as it is reserved:
    phonenumbers' parse and checks were 2.3% of a worker's CPU in a fleet change), so the last numbers that passed
    are remembered (the answer depends on nothing else; a refusal is not remembered, nor a text longer than any
    number is written)."""
    return _remembered_parse(raw, iso_code) if len(raw) <= _REMEMBERED_LENGTH else _parse_e164(raw, iso_code)


def _parse_e164(raw: str, iso_code: str | None) -> ParsedNumber:
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text if text.startswith("+") else f"+{text}")
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"'{raw}' is not a phone number ({exc})") from exc
    if parsed.extension:  # (formatted as E.164 it was dropped without a word: the user got the number alone)
        raise ValidationFailed(f"'{raw}' has an extension ({parsed.extension}): teamsvoice's number inventory holds "
                               "whole numbers, so numbers with extensions (;ext=) are not supported; give the number alone")
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed(f"'{raw}' is not a valid E.164 number")
    region = phonenumbers.region_code_for_number(parsed)
    if not region or pycountry.countries.get(alpha_2=region) is None:
        raise ValidationFailed(f"'{raw}' does not belong to an ISO 3166 country")
    if iso_code is not None and iso_code.upper() != region:
        raise ValidationFailed(f"'{raw}' is a number of {region}, not of {iso_code.upper()}")
    return ParsedNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), iso_code=region,
        country_code=str(parsed.country_code), nsn=phonenumbers.national_significant_number(parsed),
        number_type=_TYPES.get(phonenumbers.number_type(parsed), "other"),
    )


_REMEMBERED_LENGTH = 40  # characters: "+1 (425) 555-0100" and its like, with room to spare
_remembered_parse = functools.lru_cache(maxsize=4096)(_parse_e164)
