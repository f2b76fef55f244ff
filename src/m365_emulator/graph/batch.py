"""Graph JSON batching: POST /v1.0/$batch.

At most 20 requests; ids required and unique (case-insensitive); relative urls (no version prefix);
headers of ISO-8859-1 text; a body needs a Content-Type header (a batch breaking these is refused whole, 400,
before any of its requests runs). Requests run in an order that honours dependsOn (unknown or cyclic
dependencies refuse the whole batch with 400); a request whose dependency failed (status >= 400) is not
run and answers 424 Failed Dependency. Each request goes through the emulator's Graph routes (their
authorisation, with the batch's Authorization header, and their error answers; one that fails unexpectedly answers
500 inside the batch), and is throttled on its own (a throttled item is a 429 inside the batch, charged when the
batch arrives). Responses keep the request ids, in request order."""

import base64
import json
import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.middleware.exceptions import ExceptionMiddleware

from ..context import EmulatorDep
from ..faults import BATCH_ITEM, throttled_headers, throttled_message
from .auth import BATCH_CALLER, Caller, GraphCaller
from .errors import GraphError, read_json

router = APIRouter(prefix="/v1.0")

MAX_REQUESTS = 20
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
_DROPPED_HEADERS = {"content-length", "transfer-encoding", "connection"}
# What the middleware stack put in the batch's scope that the router and its routes read: the app and FastAPI's exit
# stack for the request's files.
_FROM_THE_BATCH = ("app", "fastapi_middleware_astack")
log = logging.getLogger("m365_emulator.batch")


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _validate(body: dict[str, Any]) -> list[dict[str, Any]]:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise _bad("Invalid batch payload format: 'requests' must be a non-empty array.")
    if len(requests) > MAX_REQUESTS:
        raise _bad(f"Too many requests in the batch: {len(requests)}. At most {MAX_REQUESTS} are allowed.")
    seen: set[str] = set()
    for item in requests:
        if not isinstance(item, dict):
            raise _bad("Invalid batch payload format: each request must be an object.")
        identifier = item.get("id")
        if not isinstance(identifier, str) or not identifier:
            raise _bad("Invalid batch payload format: every request needs an 'id'.")
        if identifier.lower() in seen:
            raise _bad(f"Request ids must be unique: '{identifier}' is used more than once.")
        seen.add(identifier.lower())
        if not isinstance(item.get("method"), str) or item["method"].upper() not in _METHODS:
            raise _bad(f"Invalid method for request '{identifier}'.")
        if not _is_relative_url(item.get("url")):
            raise _bad(f"Invalid url for request '{identifier}': batch urls are relative, e.g. '/users'.")
        headers = item.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _bad(f"Invalid headers for request '{identifier}'.")
        if not all(_is_header_text(name) and _is_header_text(value) for name, value in headers.items()):
            raise _bad(f"Invalid headers for request '{identifier}': a header's name and value are "
                       "ISO-8859-1 text without line breaks.")
        if "body" in item and item["body"] is not None and not any(k.lower() == "content-type" for k in headers):
            raise _bad(f"Request '{identifier}' has a body but no Content-Type header.")
        depends = item.get("dependsOn", [])
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise _bad(f"Invalid dependsOn for request '{identifier}'.")
    ids = {item["id"].lower() for item in requests}
    for item in requests:
        for dependency in item.get("dependsOn", []):
            if dependency.lower() not in ids or dependency.lower() == item["id"].lower():
                raise _bad(f"Request '{item['id']}' depends on an unknown request '{dependency}'.")
    return requests


def _is_relative_url(url: Any) -> bool:
    """A path on the service ('/users?$top=5'), as Graph's batch takes; text a request line can carry (UTF-8,
    which a lone surrogate is not) without an authority ('//host/...') or a scheme."""
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
        return False
    try:
        url.encode()
        return not urlsplit(url).scheme
    except ValueError:  # (UnicodeEncodeError; urlsplit's own refusals)
        return False


def _is_header_text(text: str) -> bool:
    """What an HTTP header's name or value can carry: ISO-8859-1 (an ASGI header is latin-1 bytes), no CR,
    LF or NUL."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any(c in text for c in "\r\n\x00")


def _order(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A topological order that otherwise keeps the request order."""
    pending = list(requests)
    done: set[str] = set()
    ordered: list[dict[str, Any]] = []
    while pending:
        ready = next((r for r in pending if all(d.lower() in done for d in r.get("dependsOn", []))), None)
        if ready is None:
            raise _bad("The dependsOn references form a cycle.")
        pending.remove(ready)
        done.add(ready["id"].lower())
        ordered.append(ready)
    return ordered


def _encode_body(item: dict[str, Any]) -> bytes:
    body = item.get("body")
    if body is None:
        return b""
    content_type = next(v for k, v in item["headers"].items() if k.lower() == "content-type").lower()
    if "json" in content_type:
        return json.dumps(body).encode()
    if isinstance(body, str):
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            return body.encode()
    return json.dumps(body).encode()


def _item_app(app: Any) -> Any:
    """The app a request of a batch runs through: its router, with the app's error answers (its exception handlers, as
    starlette's ExceptionMiddleware gives them). Not the whole middleware stack: the batch's own request went through
    it (its latency, its faults, its admission; FaultMiddleware passes an item by), and each request through its dozen
    layers was half of what the emulator's CPU did in a bulk job (bench/README: the emulator alone)."""
    item_app = getattr(app.state, "batch_item_app", None)
    if item_app is None:
        handlers = {key: handler for key, handler in app.exception_handlers.items() if key not in (500, Exception)}
        item_app = app.state.batch_item_app = ExceptionMiddleware(app.router, handlers=handlers)
    return item_app


def _scope(request: Request, item: dict[str, Any], authorization: str | None,
           caller: Caller) -> tuple[dict[str, Any], bytes]:
    """The request's ASGI scope and body."""
    url = urlsplit(item["url"])
    raw_path = "/v1.0" + url.path
    path = unquote(raw_path)  # ASGI: `path` decoded (a UPN's %40 is '@'), `raw_path` as sent
    headers = {k.lower(): v for k, v in item.get("headers", {}).items()}
    if authorization:
        headers["authorization"] = authorization
    content = _encode_body(item)
    headers["content-length"] = str(len(content))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": item["method"].upper(),
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": url.query.encode(),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
        "state": {},
        BATCH_ITEM: True,
        BATCH_CALLER: caller,  # (the batch's token, checked as the batch arrived: auth.graph_caller)
    }
    for key in _FROM_THE_BATCH:
        if key in request.scope:
            scope[key] = request.scope[key]
    return scope, content


async def _run(request: Request, item: dict[str, Any], authorization: str | None,
               caller: Caller) -> dict[str, Any]:
    content = b""
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": content, "more_body": False}

    status = 500
    response_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for key, value in message.get("headers", []):
                name = key.decode("latin-1")
                if name.lower() not in _DROPPED_HEADERS:
                    response_headers[name] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:  # (the scope too: whatever fails in this request is its own 500, after earlier requests ran)
        scope, content = _scope(request, item, authorization, caller)
        await _item_app(request.app)(scope, receive, send)
    except Exception:  # noqa: BLE001 - Graph answers a request's own failure inside the batch, the others unharmed
        log.exception("$batch request %s failed", item["id"])
        status, chunks = 500, [json.dumps({"error": {"code": "generalException",
                                                     "message": "An unexpected error occurred."}}).encode()]
        response_headers = {"content-type": "application/json"}
    raw = b"".join(chunks)
    result: dict[str, Any] = {"id": item["id"], "status": status, "headers": response_headers}
    if raw:
        content_type = response_headers.get("content-type", "")
        result["body"] = json.loads(raw) if "json" in content_type else base64.b64encode(raw).decode()
    return result


@router.post("/$batch")
async def batch(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> JSONResponse:
    """The batch itself needs a valid Graph token; each request is then authorised on its own."""
    if request.scope.get(BATCH_ITEM):
        raise _bad("A batch request cannot contain another batch.")
    validated = _validate(await read_json(request))
    requests = _order(validated)
    authorization = request.headers.get("authorization")
    results: dict[str, dict[str, Any]] = {}
    faults = emulator.faults
    for item in validated:
        url = urlsplit(item["url"])
        retry_after = faults.admit(caller.app_id, caller.tenant_id, item["method"].upper(), unquote("/v1.0" + url.path),
                                   url.query)
        if retry_after is not None:
            results[item["id"].lower()] = {
                "id": item["id"],
                "status": 429,
                "headers": {"Content-Type": "application/json",
                            **throttled_headers(retry_after, caller.app_id, caller.tenant_id)},
                "body": {"error": {"code": "TooManyRequests", "message": throttled_message(retry_after)}},
            }
    for item in requests:
        if item["id"].lower() in results:
            continue
        failed = [d for d in item.get("dependsOn", []) if results[d.lower()]["status"] >= 400]
        if failed:
            results[item["id"].lower()] = {
                "id": item["id"],
                "status": 424,
                "headers": {"Content-Type": "application/json"},
                "body": {"error": {"code": "FailedDependency", "message": f"Dependency '{failed[0]}' failed."}},
            }
            continue
        results[item["id"].lower()] = await _run(request, item, authorization, caller)
    return JSONResponse({"responses": [results[item["id"].lower()] for item in validated]})
