"""API documentation: /docs (Swagger UI) and /redoc (ReDoc) served with the package's own assets (no CDN, so
they work offline and under a CSP of 'self'), and the OpenAPI document completed with what FastAPI cannot
infer from our routes:

- security schemes for both families: ConnecttoTeams OAuth2 password flow (`/oauth/token`, client id and
  secret in HTTP Basic) and Fusion's bearer JWT (`/api/v01/auth/login`), set on each route that needs them;
- request and response schemas from documentation models (`ref`, `request_body`, `answer` below): routes that
  read their body themselves, or take `Any`, keep parsing exactly as they do, and their documentation comes
  from `openapi_extra`/`responses=` on the decorator, never from a changed parameter type;
- the errors every route of a family answers, in its envelope, from the family's docs module
  (`api/connecttoteams/docs.py`: Spring `{timestamp, status, error, message, path}` and OAuth
  `{error, error_description}`; `api/fusion/docs.py`: `{"error": {"code", "reason"}}`, 401 `{"error"}`);
- no 422: validation errors are 400 with a message naming the field (see app.py), never FastAPI's `{detail}`.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

ASSETS = Path(__file__).parent / "docs_assets"
ASSETS_URL = "/docs-assets"
FUSION_PREFIX = "/api/v01/"
# Routes anyone may call: how to get a token, the consent answers from Microsoft, liveness.
PUBLIC = ("/oauth/token", "/restricted/", "/health", "/api/v01/auth/login", "/api/v01/msteams/consent",
          "/api/v01/auth/2fa", "/api/v01/auth/reset-password", "/api/v01/auth/reset-password/")
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
METHODS = ("get", "put", "post", "delete", "patch")
# `openapi_extra` of a route that takes a token of either family (teamsvoice's own API).
EITHER_TOKEN: dict[str, Any] = {"security": [{CTT_OAUTH: []}, {FUSION_BEARER: []}]}

# --- documentation models -------------------------------------------------------------------------------------

_MODELS: dict[str, type[BaseModel]] = {}


class Doc(BaseModel):
    """A documented answer: the fields it always carries are required, the rest optional; more may follow
    (teamsvoice adds fields to the vendors' shapes, and clients must ignore what they do not know)."""

    model_config = ConfigDict(extra="allow")


class Closed(BaseModel):
    """A documented request body whose route refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


def ref(model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema as a `$ref` into components/schemas (registered here, added by `complete`)."""
    known = _MODELS.setdefault(model.__name__, model)
    if known is not model:
        raise ValueError(f"Two documentation models are named {model.__name__}: {known} and {model}")
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def schema(*models: type[BaseModel], array: bool = False) -> dict[str, Any]:
    """One model, or any of several (`anyOf`); `array`: a JSON array of it."""
    one = ref(models[0]) if len(models) == 1 else {"anyOf": [ref(m) for m in models]}
    return {"type": "array", "items": one} if array else one


def request_body(body: dict[str, Any] | type[BaseModel], *, required: bool = True,
                 media: str = "application/json", example: Any = None) -> dict[str, Any]:
    """`openapi_extra` documenting a request body the route reads itself (or takes as `Any`)."""
    content: dict[str, Any] = {"schema": body if isinstance(body, dict) else ref(body)}
    if example is not None:
        content["example"] = example
    return {"requestBody": {"required": required, "content": {media: content}}}


def body_example(example: Any, *, media: str = "application/json") -> dict[str, Any]:
    """`openapi_extra` giving the example of a body FastAPI documents from the route's own typed parameter."""
    return {"requestBody": {"content": {media: {"example": example}}}}


def answer(description: str, body: dict[str, Any] | type[BaseModel] | None = None, *,
           media: str = "application/json", example: Any = None,
           headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One entry of a decorator's `responses=`: a description and, unless the answer has no body, its schema."""
    entry: dict[str, Any] = {"description": description}
    if body is not None:
        content: dict[str, Any] = {"schema": body if isinstance(body, dict) else ref(body)}
        if example is not None:
            content["example"] = example
        entry["content"] = {media: content}
    if headers:
        entry["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                            for name, text in headers.items()}
    return entry


def _only_refs(node: Any) -> Any:
    """FastAPI merges the schema it infers from a route's return annotation (e.g. a bare object) into the one a
    decorator documents; where the documented one is a `$ref` or `anyOf`, the inferred siblings go."""
    if isinstance(node, dict):
        if "$ref" in node:
            return {"$ref": node["$ref"]}
        if "anyOf" in node and "type" in node:
            return {"anyOf": [_only_refs(n) for n in node["anyOf"]]}
        return {key: _only_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_only_refs(n) for n in node]
    return node


def _documented_content(content: dict[str, Any]) -> dict[str, Any]:
    """A media type with an empty schema is FastAPI's guess for a route that returns a Response itself (every
    route documents its bodies): it goes, so an answer without a body is documented without one."""
    return {media: _only_refs(value) for media, value in content.items() if value.get("schema") != {}}


def _api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every API route with its full path, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path_format, route
        elif hasattr(route, "original_router"):  # FastAPI's included router
            yield from _api_routes(route.original_router.routes, prefix + route.include_context.prefix)


def _examples(routes: list[Any], document: dict[str, Any]) -> None:
    """The decorators' examples as written: FastAPI drops every null from the document, and in an example a null
    means something (e.g. `"number": null` frees a user's number)."""
    for path, route in _api_routes(routes):
        if not route.include_in_schema:
            continue
        for method in route.methods:
            operation = document["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            body = (route.openapi_extra or {}).get("requestBody", {}).get("content", {})
            for media, content in body.items():
                if "example" in content:
                    operation["requestBody"]["content"][media]["example"] = content["example"]
            for status, response in route.responses.items():
                for media, content in response.get("content", {}).items():
                    if "example" in content:
                        operation["responses"][str(status)]["content"][media]["example"] = content["example"]


def _without_nulls(node: Any) -> Any:
    """A schema as FastAPI's document keeps it: no nulls, numbers as floats (it renders 2**63-1 as 9.2e18)."""
    if isinstance(node, dict):
        return {key: _without_nulls(value) for key, value in node.items() if value is not None}
    if isinstance(node, list):
        return [_without_nulls(n) for n in node]
    if isinstance(node, int) and not isinstance(node, bool):
        return float(node)
    return node


def _is_public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


def complete(document: dict[str, Any], routes: list[Any] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Security schemes, per-route security, each family's common error responses, the documentation models and
    the examples of `routes` as written; FastAPI's 422 removed."""
    from teamsvoice.api.connecttoteams import docs as ctt_docs  # the families' docs modules import this one
    from teamsvoice.api.fusion import docs as fusion_docs

    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SCHEMES)
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in document.get("paths", {}).items():
        fusion = path.startswith(FUSION_PREFIX)
        family = fusion_docs if fusion else ctt_docs
        for method, operation in item.items():
            if method not in METHODS or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for response in responses.values():
                if "content" in response:
                    response["content"] = _documented_content(response["content"])
                    if not response["content"]:
                        del response["content"]
            public = _is_public(path)
            for status, response in family.common_responses(path, method, public=public,
                                                                      body="requestBody" in operation).items():
                responses.setdefault(status, response)
            operation["responses"] = dict(sorted(responses.items()))
            if public:
                operation["security"] = []
            else:  # a route may name its own (e.g. either family's token: `EITHER_TOKEN`)
                operation.setdefault("security", [{FUSION_BEARER: []}] if fusion else [{CTT_OAUTH: []}])
    _, definitions = models_json_schema([(model, "validation") for model in _MODELS.values()],
                                        ref_template="#/components/schemas/{model}")
    for name, definition in definitions.get("$defs", {}).items():
        known = schemas.setdefault(name, definition)  # a route's wire model may be nested in a documentation one
        if _without_nulls(known) != _without_nulls(definition):  # (FastAPI's copy has lost its null defaults)
            raise ValueError(f"The documentation model {name} has the name of another schema: rename it")
    _examples(list(routes), document)
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
                openapi_version=app.openapi_version, tags=app.openapi_tags, servers=app.servers), app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
