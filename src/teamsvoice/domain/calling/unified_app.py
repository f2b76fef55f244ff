"""The Unified App: its per-enterprise template (vendor-notes 1.2), the Teams app package built from it,
and the idempotent steps that publish it to the tenant's app catalog and install it for configured users."""

import base64
import binascii
import io
import json
import struct
import zipfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import PreconditionFailed, ValidationFailed
from teamsvoice.core.limits import check_name
from teamsvoice.domain.calling import repository
from teamsvoice.domain.calling.models import TeamsAppTemplate
from teamsvoice.domain.orgs import repository as orgs_repository
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.microsoft.calling_ports import TeamsApps

APP_TYPES = ("UNIFIED",)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 1024 * 1024
# Teams app icons: colour 192x192, outline 32x32 (Teams app manifest rules).
ICONS = {"brandingImageInBytes": (192, 192), "outlineImageInBytes": (32, 32)}
TEXT_FIELDS = ("name", "bIconFileName", "oIconFileName", "portalURL", "ssoURL", "portalTabName", "teamName")
FLAG_FIELDS = ("turnOffCard", "turnOffVMCard", "showCard", "showVMCard")
MANIFEST_SCHEMA = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.16/MicrosoftTeams.schema.json"
# The icons' file names are the names of their entries in the app package (a zip beside manifest.json); absent,
# these. Teams reads PNG icons only (the images are checked as PNG), named as vendor-notes 1.2's example names them.
ICON_FILE_NAMES = {"bIconFileName": "color.png", "oIconFileName": "outline.png"}
ICON_FILE_NAME_MAX = 100
# The maximum lengths in Teams' app manifest schema (MANIFEST_SCHEMA, v1.16) of the strings `manifest` fills from a
# template, by their path in the manifest ("[]": each item of a list). Teams enforces them when the package is
# published (a sync), so a save checks each template text against those of the strings it becomes (TEMPLATE_TEXTS).
MANIFEST_MAX_LENGTHS = {
    "developer.name": 32, "developer.websiteUrl": 2048, "developer.privacyUrl": 2048, "developer.termsOfUseUrl": 2048,
    "name.short": 30, "name.full": 100, "description.short": 80, "description.full": 4000,
    "staticTabs[].name": 128, "staticTabs[].contentUrl": 2048, "staticTabs[].websiteUrl": 2048, "validDomains[]": 2048,
}
_URL = "Teams' limit for a URL of the app"
# Each template text: the manifest strings `manifest` makes of it (the name is also the developer's name when the
# template has no teamName; the SSO URL's host is a valid domain) and what it is to Teams. The descriptions are
# built from the name and the enterprise's services (a few known names), within their limits by construction:
# tests/unit/test_unified_app_manifest.py builds a manifest from the longest values a save accepts.
TEMPLATE_TEXTS = {
    "name": (("name.short", "name.full", "developer.name"), "Teams' short app name"),
    "teamName": (("developer.name",), "Teams' developer name"),
    "portalTabName": (("staticTabs[].name",), "the name of the app's tab in Teams"),
    "portalURL": (("developer.websiteUrl", "developer.privacyUrl", "developer.termsOfUseUrl",
                   "staticTabs[].contentUrl", "staticTabs[].websiteUrl", "validDomains[]"), _URL),
    "ssoURL": (("validDomains[]",), _URL),
}


def text_limit(field: str) -> int:
    """The most characters a template text may have: the least limit of the manifest strings it becomes."""
    return min(MANIFEST_MAX_LENGTHS[path] for path in TEMPLATE_TEXTS[field][0])


def _within_manifest_limit(field: str, value: str | None) -> None:
    if value is not None and len(value) > text_limit(field):
        raise ValidationFailed(f"{field}: at most {text_limit(field)} characters ({TEMPLATE_TEXTS[field][1]})")


def decode_png(field: str, value: str) -> bytes:
    """The base64 PNG, checked for signature, IHDR dimensions and size; raises naming the field."""
    width_wanted, height_wanted = ICONS[field]
    try:
        data = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(f"{field}: not valid base64 ({exc})") from exc
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationFailed(f"{field}: {len(data)} bytes; the limit is {MAX_IMAGE_BYTES} bytes")
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise ValidationFailed(f"{field}: not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    if (width, height) != (width_wanted, height_wanted):
        raise ValidationFailed(f"{field}: the image is {width}x{height}; it must be {width_wanted}x{height_wanted}")
    return data


def icon_file_names(fields: dict[str, Any]) -> dict[str, str]:
    """The two icons' file names as entries of the app package: each a plain file name ending in .png (no folder,
    no "..", printable, at most ICON_FILE_NAME_MAX characters), and not the same file twice. Raises naming the field."""
    names = {}
    for field, default in ICON_FILE_NAMES.items():
        name = fields.get(field) or default
        if len(name) > ICON_FILE_NAME_MAX:
            raise ValidationFailed(f"{field}: at most {ICON_FILE_NAME_MAX} characters")
        if not name.isprintable() or "/" in name or "\\" in name or name.strip() != name or name.startswith("."):
            raise ValidationFailed(f"{field}: must be a plain file name such as {default!r}: printable characters, "
                                   "no folder (/ or \\), no leading dot or surrounding spaces")
        if not name.lower().endswith(".png") or len(name) == len(".png"):
            raise ValidationFailed(f"{field}: must be a .png file name such as {default!r} (Teams app icons are PNG)")
        names[field] = name
    if names["bIconFileName"].casefold() == names["oIconFileName"].casefold():
        raise ValidationFailed(f"oIconFileName: must differ from bIconFileName ({names['bIconFileName']!r}): the two "
                               "icons are two files of the app package")
    return names


def _https_url(field: str, value: str | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        parsed = urlparse(value)
        parsed.port  # noqa: B018 - a port out of range (or not a number) raises here
    except ValueError:  # e.g. "https://[::1/x": an unclosed IPv6 host
        raise ValidationFailed(f"{field}: must be an https URL (this one does not parse)") from None
    if parsed.scheme != "https" or not parsed.hostname:
        raise ValidationFailed(f"{field}: must be an https URL")
    if any(c.isspace() for c in value):
        raise ValidationFailed(f"{field}: must be an https URL (spaces escaped as %20)")
    return value


def checked_settings(fields: dict[str, Any]) -> dict[str, Any]:
    """The template's settings (its texts and flags, by wire name) from a save's fields, each checked, the texts
    against the limits of the Teams app manifest they go into; raises naming the field."""
    name = (fields.get("name") or "").strip()
    if not name or len(name) > text_limit("name"):
        raise ValidationFailed(f"name: is required, at most {text_limit('name')} characters "
                               f"({TEMPLATE_TEXTS['name'][1]})")
    for field in ("brandingImageInBytes", "outlineImageInBytes"):
        if not fields.get(field):
            raise ValidationFailed(f"{field}: is required (base64 PNG)")
        decode_png(field, fields[field])
    icon_file_names(fields)
    for field in ("teamName", "portalTabName", "portalURL", "ssoURL"):
        _within_manifest_limit(field, fields.get(field))
        if fields.get(field):  # (a NUL or a line break went into the app's manifest as it came, its URL's host too)
            check_name(field, fields[field], text_limit(field))
    _https_url("portalURL", fields.get("portalURL"))
    _https_url("ssoURL", fields.get("ssoURL"))
    if not fields.get("portalURL"):
        raise ValidationFailed("portalURL: is required (the app's tab opens it)")
    settings = {k: fields.get(k) for k in TEXT_FIELDS} | {k: bool(fields.get(k) or False) for k in FLAG_FIELDS}
    settings["name"] = name
    return settings


async def save_template(session: AsyncSession, enterprise: Enterprise,
                        fields: dict[str, Any]) -> tuple[TeamsAppTemplate, bool]:
    """Create or replace the enterprise's template; the version grows only when something changed."""
    app_type = fields.get("type") or "UNIFIED"
    if app_type not in APP_TYPES:
        raise ValidationFailed(f"type: must be one of {list(APP_TYPES)}")
    settings = checked_settings(fields)
    branding, outline = fields["brandingImageInBytes"].strip(), fields["outlineImageInBytes"].strip()
    # The enterprise locked before its template is read: saves at once each read the version, added one and wrote
    # it, so two contents claimed one appVersion (the later one never published: the catalog held that version),
    # and first saves at once each inserted a template (one kept, the others answered 409).
    await orgs_repository.locked_enterprise(session, enterprise.id)
    template = await repository.app_template(session, enterprise.id, app_type)
    if template is None:
        template = TeamsAppTemplate(enterprise_id=enterprise.id, app_type=app_type, version=1, settings=settings,
                                    branding_image=branding, outline_image=outline)
        session.add(template)
        await session.flush()
        return template, True
    changed = template.settings != settings or template.branding_image != branding or template.outline_image != outline
    if changed:
        template.settings = settings
        template.branding_image = branding
        template.outline_image = outline
        template.version += 1
    await session.flush()
    return template, changed


async def template_of(session: AsyncSession, enterprise_id: int) -> TeamsAppTemplate:
    template = await repository.app_template(session, enterprise_id, "UNIFIED")
    if template is None:
        raise PreconditionFailed("The enterprise has no Unified App template; save one with "
                                 "/reseller/saveOrUpdateTeamsApplicationTemplate first")
    return template


def app_version(template: TeamsAppTemplate) -> str:
    return f"1.0.{template.version}"


@dataclass(frozen=True)
class PackageSource:
    """What a package is built from (plain data, so a durable step can carry it)."""

    external_id: str
    version: str
    settings: dict[str, Any]
    branding_image: str
    outline_image: str
    services: list[str]


def source_of(template: TeamsAppTemplate, enterprise: Enterprise) -> PackageSource:
    return PackageSource(template.external_id, app_version(template), dict(template.settings),
                         template.branding_image, template.outline_image, list(enterprise.services))


def manifest(source: PackageSource) -> dict[str, Any]:
    """The app's manifest. A template saved before its texts were checked against the manifest's limits (2026-12-06)
    may hold a longer one, which Teams would refuse at publish in its own words: refused here naming the field."""
    s = source.settings
    for field in TEMPLATE_TEXTS:
        try:
            _within_manifest_limit(field, s.get(field))
        except ValidationFailed as exc:
            raise ValidationFailed(f"The enterprise's Unified App template was saved with a {field} of "
                                   f"{len(s[field])} characters: {exc.message}; save the template again "
                                   "(saveOrUpdateTeamsApplicationTemplate) with a shorter one") from None
    portal = s["portalURL"]
    domains = sorted({h for h in (urlparse(portal).hostname, urlparse(s.get("ssoURL") or "").hostname) if h})
    services = ", ".join(source.services)
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": "1.16",
        "version": source.version,
        "id": source.external_id,
        "developer": {"name": s.get("teamName") or s["name"], "websiteUrl": portal,
                      "privacyUrl": portal, "termsOfUseUrl": portal},
        "name": {"short": s["name"], "full": s["name"]},
        "description": {"short": f"{s['name']}: calling services in Teams",
                        "full": f"{s['name']} brings the enterprise's calling services ({services}) into Microsoft Teams."},
        "icons": dict(zip(("color", "outline"), icon_file_names(s).values(), strict=True)),
        "accentColor": "#FFFFFF",
        "staticTabs": [{"entityId": "portal", "name": s.get("portalTabName") or "Portal", "contentUrl": portal,
                        "websiteUrl": portal, "scopes": ["personal"]}],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": domains,
    }


def package(source: PackageSource) -> bytes:
    document = manifest(source)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(document, indent=2))
        archive.writestr(document["icons"]["color"], base64.b64decode(source.branding_image))
        archive.writestr(document["icons"]["outline"], base64.b64decode(source.outline_image))
    return buffer.getvalue()


@dataclass(frozen=True)
class PublishedApp:
    """The app in the tenant's catalog after a publish: its Teams app id, what publishing did (PUBLISHED, UPDATED
    or UNCHANGED) and the version it holds. A calling job stores it as `stored()` in `detail["app"]`."""
    app_id: str
    action: str
    version: str

    def stored(self) -> dict[str, str]:
        return {"app_id": self.app_id, "action": self.action, "version": self.version}


async def publish(apps: TeamsApps, source: PackageSource) -> PublishedApp:
    """The app in the catalog at this version: published, updated, or left as it is."""
    existing = await apps.find_app(source.external_id)
    if existing is None:
        app = await apps.publish(package(source))
        return PublishedApp(app.id, "PUBLISHED", source.version)
    if existing.version != source.version:
        await apps.update(existing.id, package(source))
        return PublishedApp(existing.id, "UPDATED", source.version)
    return PublishedApp(existing.id, "UNCHANGED", source.version)


async def install_for(apps: TeamsApps, app_id: str, version: str, user_id: str) -> str:
    installation = await apps.installation(user_id, app_id)
    if installation is None:
        await apps.install(user_id, app_id)
        return "INSTALLED"
    if installation.version != version:
        await apps.upgrade(user_id, installation.id)
        return "UPGRADED"
    return "UNCHANGED"
