"""Process logging: JSON lines or readable text, every line tagged with its component (api, worker,
emulator, ...) and, where it applies, the request id or the job and item ids; secrets masked in every line.

`configure_logging(fmt, component)` sets up the root logger once per process. Library loggers (uvicorn,
DBOS) lose their own handlers and propagate to ours, so one format covers everything. uvicorn's access
log is replaced by `RequestLogMiddleware` (one line per request with the route template) except for the
emulator's server, whose requests keep uvicorn's access line, marked `component: "emulator"`: records of
the `m365_emulator` logger namespace and records the emulator's server makes while it runs (it stamps them
with `component`, see `m365_emulator/server.py`) are the emulator's. Give uvicorn `log_config=None` so
that building a server does not put its own handlers back.
"""

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Literal

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from teamsvoice.core.metrics import route_template

LogFormat = Literal["json", "text"]
DEFAULT_COMPONENTS: Mapping[str, str] = {"m365_emulator": "emulator"}
REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128
MASK = "***"

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("teamsvoice_request_id", default=None)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("teamsvoice_job_id", default=None)
item_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("teamsvoice_item_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` or a filter. uvicorn's own lines
# (server started, finished) carry `color_message`, the message again with terminal colour codes for uvicorn's
# formatter: not a field of ours (it put escape codes in every such line, text and JSON).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                                      "color_message"}
_OWN_FIELDS = ("component", "request_id", "job_id", "item_id")

# Keys whose values are secrets, however they are spelt: client_secret, clientSecret, access_token,
# Authorization, sipPassword, api-key, client_assertion ...
_SECRET_KEY = r"[\w-]*?(?:password|passwd|pwd|secret|token|authorization|api[_-]?key|assertion|private[_-]?key)"
_SECRET_KEY_NAME = re.compile(rf"^{_SECRET_KEY}$", re.IGNORECASE)
_SECRET_PAIR = re.compile(
    rf"""(?P<key>["']?\b{_SECRET_KEY}["']?\s*[:=]\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:Bearer|Basic)\s+[^\s,;&'"}]+|[^\s,;&'"}\]]+)""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")


def _mask_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('key')}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """The text with the values of secret-named keys, bearer credentials and JWTs masked."""
    text = _SECRET_PAIR.sub(_mask_pair, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _JWT.sub(MASK, text)


def redact_value(key: str, value: Any) -> Any:
    """A log field's value with secrets masked: the whole value when its key names a secret."""
    if _SECRET_KEY_NAME.match(key):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact_value("", v) for v in value]
    return value


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and k not in _OWN_FIELDS}


class ContextFilter(logging.Filter):
    """Stamps each record with its component and the request/job/item ids of the context it was made in."""

    def __init__(self, component: str, components: Mapping[str, str]) -> None:
        super().__init__()
        self.component = component
        # Longest namespace first, so `a.b` wins over `a`.
        self.components = sorted(components.items(), key=lambda item: -len(item[0]))

    def component_of(self, name: str) -> str:
        for namespace, component in self.components:
            if name == namespace or name.startswith(namespace + "."):
                return component
        return self.component

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "component", None):
            record.component = self.component_of(record.name)
        for field, var in (("request_id", request_id_var), ("job_id", job_id_var), ("item_id", item_id_var)):
            if getattr(record, field, None) is None:
                setattr(record, field, var.get())
        return True


class AccessLogFilter(logging.Filter):
    """Drops uvicorn's access lines for our API (RequestLogMiddleware writes those); keeps the emulator's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "uvicorn.access" or getattr(record, "component", None) == "emulator"


class RedactionFilter(logging.Filter):
    """Masks secrets in the message, the traceback and every extra field before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in _extras(record).items():
            setattr(record, key, redact_value(key, value))
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, component, the context ids that are set, extras."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record), "level": record.levelname, "logger": record.name,
            "msg": record.getMessage(), "component": getattr(record, "component", None),
        }
        for field in ("request_id", "job_id", "item_id"):
            if getattr(record, field, None) is not None:
                document[field] = getattr(record, field)
        document.update(_extras(record))
        if record.exc_text:
            document["exc"] = record.exc_text
        if record.stack_info:
            document["stack"] = record.stack_info
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`ts LEVEL [component] logger: msg key=value ...` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {f: getattr(record, f, None) for f in ("request_id", "job_id", "item_id")}
        fields.update(_extras(record))
        tail = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        line = f"{_timestamp(record)} {record.levelname:<7} [{getattr(record, 'component', '-')}] {record.name}: {record.getMessage()}"
        if tail:
            line = f"{line}  {tail}"
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{record.stack_info}"
        return line


def configure_logging(
    fmt: LogFormat, component: str, *, level: int | str = logging.INFO,
    components: Mapping[str, str] = DEFAULT_COMPONENTS, stream: Any = None,
) -> logging.Handler:
    """Routes every logger of the process to one stderr handler writing `fmt`, tagged with `component`
    (or the component of the record's logger namespace in `components`). Safe to call again: it replaces
    the handler it installed before. Returns the handler."""
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be 'json' or 'text', not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name("teamsvoice")
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter(component, components))
    handler.addFilter(AccessLogFilter())
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "teamsvoice"]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        library = logging.getLogger(name)
        library.handlers = []
        library.propagate = True
        library.setLevel(logging.NOTSET)
    # httpx logs every request at INFO: one line per Microsoft call would drown the rest (the metrics count them).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic announces each of its plugins at INFO on every start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # DBOS adds its own console handler unless its logger already has one: a NullHandler keeps it from
    # doing so while its records still reach ours.
    dbos = logging.getLogger("dbos")
    dbos.handlers = [logging.NullHandler()]
    dbos.propagate = True
    return handler


@contextmanager
def job_log_context(job_id: str | int | None = None, item_id: str | int | None = None) -> Iterator[None]:
    """Within the block, log lines carry `job_id` / `item_id` (those given; the others stay as they were)."""
    tokens = []
    if job_id is not None:
        tokens.append((job_id_var, job_id_var.set(str(job_id))))
    if item_id is not None:
        tokens.append((item_id_var, item_id_var.set(str(item_id))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


_REQUEST_ID = re.compile(rf"^[\x21-\x7e]{{1,{MAX_REQUEST_ID_LENGTH}}}$")


def valid_request_id(value: str) -> bool:
    """Visible ASCII only (no spaces, no control characters), at most 128 characters."""
    return _REQUEST_ID.match(value) is not None


access_logger = logging.getLogger("teamsvoice.access")


class RequestLogMiddleware:
    """Pure ASGI: gives each HTTP request an id (the caller's `X-Request-ID` when it is visible ASCII of at
    most 128 characters, else a new uuid4 hex), echoes it in the response, keeps it in a context variable
    for every log line made while handling the request, and writes one access line when the request ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-request-id"), "")
        request_id = incoming if valid_request_id(incoming) else uuid.uuid4().hex
        request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        # The variable is set in this task's context and deliberately not reset: when the app raises, the
        # server's error handler logs after we return and its line must carry the id too. ASGI servers run
        # every request in a context of its own, so it goes no further.
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_logger.info(
                "%s %s %s", scope["method"], route_template(scope), status,
                extra={"method": scope["method"], "route": route_template(scope), "status": status,
                       "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
            )
