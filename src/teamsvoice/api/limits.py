"""Limits every request meets before any router sees it, and the last line of defence behind them.

`RequestLimits` is a pure ASGI middleware around the routers (and the metrics middleware):
- the body is read once, up to a size limit (413 in the family's envelope);
- a body sent with a Content-Type its route does not read is a 400 naming the Content-Type problem (JSON sent as
  text/plain, as a form or without a Content-Type to a route taking JSON; JSON sent to /oauth/token, which takes
  form fields), instead of
  whatever the parser then makes of it ("Input should be a valid dictionary", "Missing grant type"). Routes that
  read their body themselves (the seeds' bare-text bodies) are not concerned;
- a compressed body (any Content-Encoding but identity) is a 415 saying to send it uncompressed;
- a JSON body (an object, an array or a string) nesting deeper than `JSON_MAX_DEPTH`, holding a key twice in one
  object, or holding text that is not Unicode (a lone UTF-16 surrogate such as "\\ud800", which no response or
  database could encode), is a 400 naming the field or key, before anything parses it; an urlencoded form whose
  field is not UTF-8 is a 400 naming the field (the parser stored replacement characters);
- any exception that escapes the application becomes the family's 500 envelope here, so nothing reaches
  Starlette's ServerErrorMiddleware (which re-raises, and uvicorn then drops the keep-alive connection).

The wire-model types for 64-bit integers and stored names are in `teamsvoice.core.limits`.
"""

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from fastapi import Request, params
from fastapi.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from teamsvoice import console
from teamsvoice.api import fusion
from teamsvoice.api.connecttoteams.errors import oauth_error, spring_error
from teamsvoice.api.fusion import errors as fusion_errors
from teamsvoice.core.limits import form_body_problem, json_body_problem

# A body over the limit is still read (and dropped) up to this size, so that the client reads our 413 instead of
# a reset connection and may go on using it; beyond it the connection is closed.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
# Routes whose bodies are large by design (up to 10,000 users; two base64 images of up to 1 MiB) get the larger limit.
# Routes whose bodies are large by design: Fusion's bulk update, the console's bulk CSV (up to 10,000 rows, previewed
# as a file, then run as the form that carries the same text), and the template with its two images.
LARGE_BODY_ROUTES = (("PUT", "/msteams/users/bulk"), ("POST", "/bulk/preview"), ("POST", "/bulk/run"),
                     ("POST", "/reseller/saveOrUpdateTeamsApplicationTemplate"))

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

UnexpectedRenderer = Callable[[Request, Exception], Awaitable[Response]]


class BodyTooLarge(Exception):
    def __init__(self, *, drained: bool) -> None:
        super().__init__()
        self.drained = drained  # the whole body was read (and dropped): the connection can serve the next request


@cache
def _routes() -> list[Any]:
    from teamsvoice.api import connecttoteams  # the package imports this module's neighbours: import when used

    return [route for router in (*connecttoteams.ROUTERS, *fusion.ROUTERS) for route in router.routes]


def _body_kind(scope: Scope) -> str | None:
    """How the route this request goes to takes its body: "json", "form", or None (no body parameter: it reads
    the body itself, as the bare-text routes do, or takes none)."""
    for route in _routes():
        match, _ = route.matches(scope)
        if match is Match.FULL:
            field = getattr(route, "body_field", None)
            if field is None:
                return None
            return "form" if isinstance(field.field_info, params.Form) else "json"
    return None


def content_type_problem(scope: Scope, content_type: str, body: bytes) -> str | None:
    """Why the body cannot be read as its route reads it, naming the Content-Type (None: nothing wrong here)."""
    if not body.strip():
        return None
    media = content_type.split(";", 1)[0].strip()
    is_json = media == "application/json" or media.endswith("+json")
    kind = _body_kind(scope)
    if kind == "json" and not is_json:  # (none at all: FastAPI reads no JSON without the header either)
        sent = f"{media} is not JSON" if media else "missing"
        return (f"Content-Type: {sent}; this request takes a JSON body: send it with "
                f"Content-Type: application/json")
    looks_json = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")
    if kind == "form" and (is_json or (looks_json and not media.startswith(_FORM_TYPES))):
        example = (" (e.g. grant_type=password&username=...&password=...)" if scope["path"].rstrip("/") == "/oauth/token"
                   else "")
        return (f"Content-Type: {media or 'none'} with a JSON body; {scope['path']} takes form fields: send them as "
                f"application/x-www-form-urlencoded{example}")
    return None


def render_error(scope: Scope, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    request = Request(scope)
    if console.is_console_route(request):  # a page (or the flash region) for a person
        return console.render_message(request, message, status=status)
    if request.url.path.rstrip("/") == "/oauth/token":  # OAuth 2's own envelope on the token endpoint
        response: Response = oauth_error(status, "invalid_request", message)
    elif request.url.path.startswith(fusion.PREFIX):
        response = fusion_errors.fusion_error(status, fusion_errors.code_for_status(status), message)
    else:
        response = spring_error(request, status, message)
    response.headers.update(headers or {})
    return response


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_bulk_body_bytes: int,
                 render_unexpected: UnexpectedRenderer) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_bulk_body_bytes = max_bulk_body_bytes
        self.render_unexpected = render_unexpected

    def _limit(self, scope: Scope) -> int:
        path = scope["path"].rstrip("/")
        large = any(scope["method"] == method and path.endswith(suffix) for method, suffix in LARGE_BODY_ROUTES)
        return self.max_bulk_body_bytes if large else self.max_body_bytes

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        declared = dict(scope["headers"]).get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > DRAIN_MAX_BYTES:
            raise BodyTooLarge(drained=False)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the application sees an empty body and its answer goes nowhere
            size += len(message.get("body", b""))
            if size > DRAIN_MAX_BYTES:
                raise BodyTooLarge(drained=False)
            if size <= limit:
                chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if size > limit:
            raise BodyTooLarge(drained=True)
        return b"".join(chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            await send(message)
            started = started or message["type"] == "http.response.start"  # sent: from here it cannot be taken back

        try:
            limit = self._limit(scope)
            try:
                body = await self._read_body(scope, receive, limit)
            except BodyTooLarge as exc:
                await render_error(scope, 413, f"body: the request body exceeds {limit} bytes",
                                   None if exc.drained else {"Connection": "close"})(scope, receive, send)
                return
            headers = dict(scope["headers"])
            encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
            if body and encoding not in ("", "identity"):
                await render_error(scope, 415, f"Content-Encoding: {encoding[:40]} is not accepted; send the body "
                                   "uncompressed (Content-Encoding: identity, or none)")(scope, receive, send)
                return
            content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
            problem = content_type_problem(scope, content_type, body)
            if problem is None and content_type.startswith("application/x-www-form-urlencoded"):
                problem = form_body_problem(body)
            elif problem is None and not content_type.startswith(_FORM_TYPES):
                problem = json_body_problem(body)
            if problem:
                await render_error(scope, 400, problem)(scope, receive, send)
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_tracked)
        except Exception as exc:  # noqa: BLE001 - the catch-all: an answer, never a dropped connection
            if started:
                raise  # half a response cannot be repaired: the server must close the connection
            response = await self.render_unexpected(Request(scope), exc)
            await response(scope, receive, send)
