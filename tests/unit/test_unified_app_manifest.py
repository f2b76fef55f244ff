"""The Teams app manifest built from a Unified App template stays within the maximum lengths of Teams' manifest
schema (v1.16), which Teams enforces when the package is published: whatever a save accepts can be published."""

import uuid
from typing import Any

import pytest

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.calling import unified_app
from teamsvoice.domain.orgs.service import SERVICES
from tests.support.calling import b64png

# MicrosoftTeams.schema.json v1.16: the maxLength of each string the builder fills from a template, by its path.
SCHEMA_MAX_LENGTHS = {
    "developer.name": 32, "developer.websiteUrl": 2048, "developer.privacyUrl": 2048, "developer.termsOfUseUrl": 2048,
    "name.short": 30, "name.full": 100, "description.short": 80, "description.full": 4000,
    "staticTabs[].name": 128, "staticTabs[].contentUrl": 2048, "staticTabs[].websiteUrl": 2048, "validDomains[]": 2048,
}


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a manifest with its path ("[]" for each item of a list)."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in strings(item, f"{path}.{key}" if path else key)]
    if isinstance(value, list):
        return [found for item in value for found in strings(item, f"{path}[]")]
    return [(path, value)] if isinstance(value, str) else []


def url_of(length: int, host: str = "") -> str:
    """An https URL of exactly `length` characters (with a host as long as it leaves room for when none is given)."""
    start = "https://" + (host or "h" * (length - len("https://") - 2) + ".x")
    return start + ("/" + "p" * (length - len(start) - 1) if len(start) < length else "")


def longest(**more: Any) -> dict[str, Any]:
    """A save's fields with every text as long as a save accepts (the name in letters wider than ASCII)."""
    return {"name": "É" * unified_app.text_limit("name"), "teamName": "T" * unified_app.text_limit("teamName"),
            "portalTabName": "P" * unified_app.text_limit("portalTabName"),
            "portalURL": url_of(unified_app.text_limit("portalURL")),
            "ssoURL": url_of(unified_app.text_limit("ssoURL")),
            "bIconFileName": "c" * (unified_app.ICON_FILE_NAME_MAX - 4) + ".png", "oIconFileName": None,
            "brandingImageInBytes": b64png(192, 192), "outlineImageInBytes": b64png(32, 32)} | more


def built(fields: dict[str, Any], services: list[str]) -> dict[str, Any]:
    source = unified_app.PackageSource(str(uuid.uuid4()), "1.0.1", unified_app.checked_settings(fields),
                                       fields["brandingImageInBytes"], fields["outlineImageInBytes"], services)
    return unified_app.manifest(source)


def test_the_save_checks_the_schemas_limits() -> None:
    assert unified_app.MANIFEST_MAX_LENGTHS == SCHEMA_MAX_LENGTHS
    assert {field: unified_app.text_limit(field) for field in unified_app.TEMPLATE_TEXTS} == {
        "name": 30, "teamName": 32, "portalTabName": 128, "portalURL": 2048, "ssoURL": 2048}


@pytest.mark.parametrize("team_name", ["T" * 32, None], ids=["team-name", "developer-is-the-app-name"])
def test_the_manifest_of_the_longest_accepted_template_stays_within_every_limit(team_name: str | None) -> None:
    fields = longest(teamName=team_name)
    services = [*SERVICES, "DIRECT_ROUTING"]  # every service an enterprise may have, the Fusion customer's too
    document = built(fields, services)
    found = strings(document)
    assert {path for path, _ in found} >= set(SCHEMA_MAX_LENGTHS)  # the walk sees every string the schema bounds
    over = [(path, len(text)) for path, text in found if len(text) > SCHEMA_MAX_LENGTHS.get(path, len(text))]
    assert over == []
    assert document["developer"]["name"] == (team_name or fields["name"])
    assert len(document["developer"]["websiteUrl"]) == len("https://") + len(document["validDomains"][0]) == 2048


@pytest.mark.parametrize("field", ["name", "teamName", "portalTabName", "portalURL", "ssoURL"])
def test_one_character_more_is_refused_naming_the_field_and_its_limit(field: str) -> None:
    limit = unified_app.text_limit(field)
    value = url_of(limit + 1) if field.endswith("URL") else "x" * (limit + 1)
    with pytest.raises(ValidationFailed, match=f"^{field}: .*at most {limit} characters"):
        unified_app.checked_settings(longest(**{field: value}))


def test_a_template_stored_before_the_check_is_refused_at_publish_naming_the_field() -> None:
    """A template saved before the texts were checked (2026-12-06) may hold a teamName over 32: its publish says so
    and what to do, rather than Teams' refusal of the package."""
    fields = longest()
    settings = unified_app.checked_settings(fields) | {"teamName": "T" * 40}
    source = unified_app.PackageSource(str(uuid.uuid4()), "1.0.1", settings, fields["brandingImageInBytes"],
                                       fields["outlineImageInBytes"], ["DIRECT_ROUTING"])
    with pytest.raises(ValidationFailed, match="teamName of 40 characters: teamName: at most 32 characters .*save the"):
        unified_app.package(source)
