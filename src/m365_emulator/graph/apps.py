"""Graph v1.0 Teams apps: the tenant app catalog (/appCatalogs/teamsApps) and per-user installations
(/users/{id}/teamwork/installedApps).

As in Graph: publishing (POST a Teams app package, application/zip, with manifest.json) and updating
(POST .../appDefinitions) return 200 with the new teamsApp / teamsAppDefinition and accept delegated
tokens only; an externalId (manifest id) already in the catalog is 409 Conflict; an update must carry the
same manifest id and a higher version. Installing for a user returns 201, twice is 409; upgrade moves the
installation to the app's latest definition (204); uninstall is 204."""

import base64
import io
import json
import re
import uuid
import zipfile
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import clock
from ..context import EmulatorDep
from ..directory import find_user
from ..store import Document, Transaction, public
from .auth import Caller, GraphCaller, require
from .errors import GraphError, bad_request, not_found, read_json
from .query import collection

router = APIRouter(prefix="/v1.0")

CATALOG_READ = ("AppCatalog.Read.All", "AppCatalog.Submit", "Directory.Read.All")
CATALOG_WRITE = ("AppCatalog.Submit", "AppCatalog.ReadWrite.All", "Directory.ReadWrite.All")
INSTALL_READ = (
    "TeamsAppInstallation.ReadForUser", "TeamsAppInstallation.ReadForUser.All",
    "TeamsAppInstallation.ReadWriteSelfForUser", "TeamsAppInstallation.ReadWriteSelfForUser.All",
    "TeamsAppInstallation.ReadWriteForUser", "TeamsAppInstallation.ReadWriteForUser.All",
)
INSTALL_WRITE = (
    "TeamsAppInstallation.ReadWriteSelfForUser", "TeamsAppInstallation.ReadWriteSelfForUser.All",
    "TeamsAppInstallation.ReadWriteForUser", "TeamsAppInstallation.ReadWriteForUser.All",
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_VERSION = re.compile(r"^(\d{1,9})\.(\d{1,9})\.(\d{1,9})$")
_CLAUSE = re.compile(r"^([\w/]+)\s+eq\s+'((?:[^']|'')*)'$", re.IGNORECASE)
_BIND = re.compile(r"/appCatalogs/teamsApps(?:/|\(')([^/'()]+)'?\)?/?$")
_APP_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#appCatalogs/teamsApps"


# --- packages ----------------------------------------------------------------------------------------


def _manifest(package: bytes) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            names = {name.lower(): name for name in archive.namelist()}
            if "manifest.json" not in names:
                raise bad_request("Validation failed: the app package must contain manifest.json at its root.")
            manifest = json.loads(archive.read(names["manifest.json"]).decode("utf-8-sig"))
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, GraphError):
            raise
        raise bad_request("Validation failed: the request body is not a valid Teams app package (zip).") from exc
    if not isinstance(manifest, dict):
        raise bad_request("Validation failed: manifest.json must be a JSON object.")
    errors = []
    if not isinstance(manifest.get("id"), str) or not _GUID.match(manifest["id"]):
        errors.append("'id' is required and must be a GUID")
    if not isinstance(manifest.get("version"), str) or not _VERSION.match(manifest["version"]):
        errors.append("'version' is required and must be of the form major.minor.patch")
    name = manifest.get("name")
    if not isinstance(name, dict) or not isinstance(name.get("short"), str) or not name["short"].strip():
        errors.append("'name.short' is required")
    if errors:
        raise bad_request("Validation failed: " + "; ".join(errors) + ".")
    return manifest


async def _package(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/zip":
        raise GraphError(415, "UnsupportedMediaType", "The Content-Type must be application/zip.")
    return _manifest(await request.body())


def _delegated_only(caller: Caller) -> None:
    if caller.app_only:
        raise GraphError(
            403, "Forbidden", "This operation is not supported with application permissions; use a delegated token."
        )


def _definition(app_id: str, manifest: dict[str, Any], caller: Caller) -> Document:
    description = manifest.get("description") if isinstance(manifest.get("description"), dict) else {}
    return {
        "id": base64.urlsafe_b64encode(f"{app_id}##{manifest['version']}##Published".encode()).decode(),
        "teamsAppId": app_id,
        "displayName": manifest["name"]["short"],
        "version": manifest["version"],
        "publishingState": "published",
        "shortDescription": description.get("short"),
        "description": description.get("full"),
        "lastModifiedDateTime": clock.iso_now(),
        "createdBy": {
            "application": None,
            "device": None,
            "user": {"id": caller.object_id, "displayName": None},
        },
        "authorization": {"clientAppId": None, "requiredPermissionSet": {"resourceSpecificPermissions": []}},
    }


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# --- rendering and filtering -------------------------------------------------------------------------


def _expansions(request: Request, allowed: set[str]) -> set[str]:
    raw = request.query_params.get("$expand", "")
    names = {part.strip() for part in raw.split(",") if part.strip()}
    for name in names:
        if name not in allowed:
            raise bad_request(f"Could not find a navigation property named '{name}'.")
    return names


def _app_view(app: Document, expand: set[str]) -> Document:
    view = {key: value for key, value in public(app).items()}
    if "appDefinitions" in expand:
        view["appDefinitions"] = list(app["_definitions"])
    return view


def _predicate(request: Request) -> Any:
    expression = request.query_params.get("$filter")
    if not expression:
        return None
    clauses = []
    for clause in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause.strip())
        if match is None:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: '{clause}'.")
        clauses.append((match.group(1).split("/"), match.group(2).replace("''", "'").lower()))

    def matches(document: Document) -> bool:
        for path, expected in clauses:
            value: Any = document
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if str(value if value is not None else "").lower() != expected:
                return False
        return True

    return matches


def _app_or_404(tx: Transaction, caller: Caller, app_id: str) -> Document:
    app = tx.get("teams_app", app_id)
    if app is None or app["_tenantId"] != caller.tenant_id:
        raise not_found(app_id)
    return app


# --- catalog -----------------------------------------------------------------------------------------


@router.get("/appCatalogs/teamsApps")
async def list_teams_apps(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *CATALOG_READ, *CATALOG_WRITE)
    expand = _expansions(request, {"appDefinitions"})
    predicate = _predicate(request)
    with emulator.store.transaction() as tx:
        apps = [_app_view(a, expand | {"appDefinitions"}) for a in tx.list("teams_app", caller.tenant_id)]
    apps = [a for a in apps if predicate is None or predicate(a)]
    if "appDefinitions" not in expand:
        apps = [{k: v for k, v in a.items() if k != "appDefinitions"} for a in apps]
    return collection(request, emulator.settings.base_url, "appCatalogs/teamsApps", apps, lambda doc: doc)


@router.get("/appCatalogs/teamsApps/{app_id}")
async def get_teams_app(app_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *CATALOG_READ, *CATALOG_WRITE)
    expand = _expansions(request, {"appDefinitions"})
    with emulator.store.transaction() as tx:
        app = _app_or_404(tx, caller, app_id)
    return {"@odata.context": f"{_APP_CONTEXT}/$entity", **_app_view(app, expand)}


@router.post("/appCatalogs/teamsApps")
async def publish_teams_app(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> JSONResponse:
    require(caller, *CATALOG_WRITE)
    _delegated_only(caller)
    manifest = await _package(request)
    with emulator.store.transaction() as tx:
        external_id = manifest["id"].lower()
        if any(a["externalId"] == external_id for a in tx.list("teams_app", caller.tenant_id)):
            raise GraphError(409, "Conflict", "App with same id already exists in the tenant.")
        app_id = str(uuid.uuid4())
        definition = _definition(app_id, manifest, caller)
        app = {
            "id": app_id,
            "externalId": external_id,
            "displayName": manifest["name"]["short"],
            "distributionMethod": "organization",
            "_definitions": [definition],
            "_tenantId": caller.tenant_id,
        }
        tx.put("teams_app", app_id, app, caller.tenant_id)
    return JSONResponse({"@odata.context": f"{_APP_CONTEXT}/$entity", **_app_view(app, set())}, status_code=200)


@router.post("/appCatalogs/teamsApps/{app_id}/appDefinitions")
async def update_teams_app(app_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> JSONResponse:
    require(caller, *CATALOG_WRITE)
    _delegated_only(caller)
    manifest = await _package(request)
    with emulator.store.transaction() as tx:
        app = _app_or_404(tx, caller, app_id)
        if manifest["id"].lower() != app["externalId"]:
            raise bad_request(
                f"Validation failed: the manifest id '{manifest['id']}' does not match the app's externalId "
                f"'{app['externalId']}'."
            )
        latest = app["_definitions"][-1]["version"]
        if _version(manifest["version"]) <= _version(latest):
            raise bad_request(
                f"Validation failed: the version '{manifest['version']}' must be greater than the current version "
                f"'{latest}'."
            )
        definition = _definition(app_id, manifest, caller)
        app["_definitions"].append(definition)
        app["displayName"] = definition["displayName"]
        tx.put("teams_app", app_id, app, caller.tenant_id)
    return JSONResponse(
        {"@odata.context": f"{_APP_CONTEXT}('{app_id}')/appDefinitions/$entity", **definition}, status_code=200
    )


@router.delete("/appCatalogs/teamsApps/{app_id}", status_code=204)
async def delete_teams_app(app_id: str, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *CATALOG_WRITE)
    _delegated_only(caller)
    with emulator.store.transaction() as tx:
        app = _app_or_404(tx, caller, app_id)
        for installation in tx.list("teams_app_install", caller.tenant_id):
            if installation["_appId"] == app["id"]:
                tx.delete("teams_app_install", installation["id"])
        tx.delete("teams_app", app["id"])
    return Response(status_code=204)


# --- per-user installations --------------------------------------------------------------------------


def _installation_view(tx: Transaction, installation: Document, expand: set[str]) -> Document | None:
    app = tx.get("teams_app", installation["_appId"])
    if app is None:
        return None
    definition = next((d for d in app["_definitions"] if d["id"] == installation["_definitionId"]), app["_definitions"][-1])
    view: Document = {
        "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
        "id": installation["id"],
        "consentedPermissionSet": None,
    }
    if "teamsApp" in expand:
        view["teamsApp"] = public(app)
    if "teamsAppDefinition" in expand:
        view["teamsAppDefinition"] = definition
    return view


def _user_id(tx: Transaction, caller: Caller, user_id: str) -> str:
    user = find_user(tx, caller.tenant_id, user_id)
    if user is None:
        raise not_found(user_id)
    return user["id"]


def _installations(tx: Transaction, caller: Caller, user_id: str) -> list[Document]:
    return [i for i in tx.list("teams_app_install", caller.tenant_id) if i["_userId"] == user_id]


@router.get("/users/{user_id}/teamwork/installedApps")
async def list_installed_apps(user_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *INSTALL_READ)
    expand = _expansions(request, {"teamsApp", "teamsAppDefinition"})
    predicate = _predicate(request)
    with emulator.store.transaction() as tx:
        uid = _user_id(tx, caller, user_id)
        full = [v for i in _installations(tx, caller, uid) if (v := _installation_view(tx, i, {"teamsApp", "teamsAppDefinition"}))]
    full = [v for v in full if predicate is None or predicate(v)]
    views = [{k: v for k, v in view.items() if k not in {"teamsApp", "teamsAppDefinition"} - expand} for view in full]
    return collection(request, emulator.settings.base_url, f"users('{user_id}')/teamwork/installedApps", views, lambda d: d)


@router.get("/users/{user_id}/teamwork/installedApps/{installation_id}")
async def get_installed_app(
    user_id: str, installation_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep
) -> dict[str, Any]:
    require(caller, *INSTALL_READ)
    expand = _expansions(request, {"teamsApp", "teamsAppDefinition"})
    with emulator.store.transaction() as tx:
        installation = _installation_or_404(tx, caller, user_id, installation_id)
        view = _installation_view(tx, installation, expand)
    if view is None:
        raise not_found(installation_id)
    return {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{user_id}')/teamwork/installedApps/$entity", **view}


def _installation_or_404(tx: Transaction, caller: Caller, user_id: str, installation_id: str) -> Document:
    uid = _user_id(tx, caller, user_id)
    installation = tx.get("teams_app_install", installation_id)
    if installation is None or installation["_userId"] != uid or installation["_tenantId"] != caller.tenant_id:
        raise not_found(installation_id)
    return installation


@router.post("/users/{user_id}/teamwork/installedApps", status_code=201)
async def install_app(user_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> JSONResponse:
    require(caller, *INSTALL_WRITE)
    body = await read_json(request, entity="microsoft.graph.userScopeTeamsAppInstallation", keep=("teamsApp@odata.bind",))
    bind = body.get("teamsApp@odata.bind")
    match = _BIND.search(bind) if isinstance(bind, str) else None
    if match is None:
        raise bad_request("The property 'teamsApp@odata.bind' must reference /appCatalogs/teamsApps/{id}.")
    with emulator.store.transaction() as tx:
        uid = _user_id(tx, caller, user_id)
        app = tx.get("teams_app", match.group(1))
        if app is None or app["_tenantId"] != caller.tenant_id:
            raise not_found(match.group(1))
        if any(i["_appId"] == app["id"] for i in _installations(tx, caller, uid)):
            raise GraphError(409, "Conflict", "App is already installed for this user.")
        installation_id = base64.urlsafe_b64encode(f"{uid}##{app['id']}".encode()).decode()
        installation = {
            "id": installation_id,
            "_userId": uid,
            "_appId": app["id"],
            "_definitionId": app["_definitions"][-1]["id"],
            "_installedAt": clock.iso_now(),
            "_tenantId": caller.tenant_id,
        }
        tx.put("teams_app_install", installation_id, installation, caller.tenant_id)
        view = _installation_view(tx, installation, set())
    return JSONResponse(
        {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{user_id}')/teamwork/installedApps/$entity", **(view or {})},
        status_code=201,
    )


@router.post("/users/{user_id}/teamwork/installedApps/{installation_id}/upgrade", status_code=204)
async def upgrade_app(user_id: str, installation_id: str, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *INSTALL_WRITE)
    with emulator.store.transaction() as tx:
        installation = _installation_or_404(tx, caller, user_id, installation_id)
        app = tx.get("teams_app", installation["_appId"])
        if app is None:
            raise not_found(installation_id)
        installation["_definitionId"] = app["_definitions"][-1]["id"]
        tx.put("teams_app_install", installation_id, installation, caller.tenant_id)
    return Response(status_code=204)


@router.delete("/users/{user_id}/teamwork/installedApps/{installation_id}", status_code=204)
async def uninstall_app(user_id: str, installation_id: str, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *INSTALL_WRITE)
    with emulator.store.transaction() as tx:
        installation = _installation_or_404(tx, caller, user_id, installation_id)
        tx.delete("teams_app_install", installation["id"])
    return Response(status_code=204)


def state(tx: Transaction, tenant_id: str) -> dict[str, Any]:
    """The admin API's read-back: the catalog with every definition, and the installations."""
    installations = []
    for installation in tx.list("teams_app_install", tenant_id):
        app = tx.get("teams_app", installation["_appId"])
        definition = next((d for d in app["_definitions"] if d["id"] == installation["_definitionId"]), None) if app else None
        installations.append(
            {
                "id": installation["id"],
                "userId": installation["_userId"],
                "teamsAppId": installation["_appId"],
                "externalId": app["externalId"] if app else None,
                "version": definition["version"] if definition else None,
                "installedDateTime": installation["_installedAt"],
            }
        )
    return {
        "tenantId": tenant_id,
        "catalog": [_app_view(app, {"appDefinitions"}) for app in tx.list("teams_app", tenant_id)],
        "installations": installations,
    }
