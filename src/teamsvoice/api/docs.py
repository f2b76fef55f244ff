"""API documentation: /docs (Swagger UI) and /redoc (ReDoc) served with the package's own assets (no CDN, so
they work offline and under a CSP of 'self'), and the OpenAPI document completed with what FastAPI cannot
infer from our routes:

- security schemes for both families: ConnecttoTeams OAuth2 password flow (`/oauth/token`, client id and
  secret in HTTP Basic) and Fusion's bearer JWT (`/api/v01/auth/login`), set on each route that needs them;
- the errors routes answer, in their family's envelope (Spring `{timestamp, status, error, message, path}` or
  OAuth `{error, error_description}` for ConnecttoTeams; `{"error": {"code", "reason"}}` for Fusion);
- no 422: validation errors are 400 with a message naming the field (see app.py), never FastAPI's `{detail}`.
"""

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "docs_assets"
ASSETS_URL = "/docs-assets"
FUSION_PREFIX = "/api/v01/"
# Routes anyone may call: how to get a token, the consent answer from Microsoft, liveness.
PUBLIC = ("/oauth/token", "/restricted/", "/health", "/api/v01/auth/login")
CTT_OAUTH, FUSION_BEARER = "ConnecttoTeamsOAuth", "FusionBearer"

SCHEMES: dict[str, Any] = {
    CTT_OAUTH: {
        "type": "oauth2",
        "description": "ConnecttoTeams: OAuth2 password grant at /oauth/token with the API client's id and secret "
                       "(HTTP Basic) and a portal user's username and password; send `Authorization: Bearer "
                       "<access_token>`.",
        "flows": {"password": {"tokenUrl": "/oauth/token", "refreshUrl": "/oauth/token", "scopes": {}}},
    },
    FUSION_BEARER: {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "Fusion: the `access_token` from POST /api/v01/auth/login (15 minutes; renew with "
                       "/api/v01/auth/access_token).",
    },
}
ERROR_SCHEMAS: dict[str, Any] = {
    "SpringError": {
        "type": "object", "description": "ConnecttoTeams error envelope (Spring Boot's).",
        "required": ["timestamp", "status", "error", "message", "path"],
        "properties": {"timestamp": {"type": "string", "format": "date-time"}, "status": {"type": "integer"},
                       "error": {"type": "string"}, "message": {"type": "string"}, "path": {"type": "string"}},
        "example": {"timestamp": "2024-05-01T10:00:00.000+00:00", "status": 400, "error": "Bad Request",
                    "message": "enterpriseName: is required", "path": "/reseller/newEnterprise"},
    },
    "OAuthError": {
        "type": "object", "description": "ConnecttoTeams authentication failure (OAuth 2).",
        "required": ["error", "error_description"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        "example": {"error": "invalid_token", "error_description": "Invalid access token"},
    },
    "FusionError": {
        "type": "object", "description": "Fusion error envelope.",
        "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "reason"],
                                 "properties": {"code": {"type": "integer"}, "reason": {"type": "string"}}}},
        "example": {"error": {"code": 1000, "reason": "name: is required"}},
    },
}
DESCRIPTIONS = {"400": "Invalid request: the message names the field", "401": "Missing, invalid or expired token",
                "403": "The token's login lacks the role this route needs", "404": "Not found, or not in your scope",
                "409": "Conflicts with the current state"}


def _is_public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


def _error(status: str, schema: str) -> dict[str, Any]:
    return {"description": DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Security schemes, per-route security and error responses; FastAPI's 422 removed."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SCHEMES)
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(ERROR_SCHEMAS)
    for path, item in document.get("paths", {}).items():
        fusion = path.startswith(FUSION_PREFIX)
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch") or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            envelope = "FusionError" if fusion else "SpringError"
            responses.setdefault("400", _error("400", envelope))
            if _is_public(path):
                operation["security"] = []
                continue
            operation["security"] = [{FUSION_BEARER: []}] if fusion else [{CTT_OAUTH: []}]
            responses.setdefault("401", _error("401", envelope if fusion else "OAuthError"))
            responses.setdefault("403", _error("403", envelope))
            if "{" in path or method != "get":
                responses.setdefault("404", _error("404", envelope))
            if method in ("post", "put", "patch") and not fusion:  # Fusion has no 409 (see api/fusion/errors.py)
                responses.setdefault("409", _error("409", envelope))
    return document


def _swagger_page() -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>teamsvoice API</title>
<link rel="icon" type="image/png" href="{ASSETS_URL}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_URL}/swagger-init.js"></script>
</body></html>"""


def _redoc_page() -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>teamsvoice API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_URL}/redoc.standalone.js"></script>
</body></html>"""


def install(app: FastAPI) -> None:
    """Call on an app created with docs_url=None and redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(_swagger_page())

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(_redoc_page())

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
                openapi_version=app.openapi_version, tags=app.openapi_tags, servers=app.servers))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
