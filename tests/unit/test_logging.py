"""Logging: JSON lines and text, secrets masked, request ids honoured or generated and echoed, one access
line per request with the route template, job/item ids on job lines, the emulator's lines marked; and
the Microsoft/job metrics on /metrics after a Graph call."""

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from teamsvoice.core.logging import RequestLogMiddleware, configure_logging, job_log_context, redact
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.graph import RetryPolicy
from teamsvoice.settings import Settings

_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "dbos", "httpx")
SECRETS = ("hunter2-pass", "s3cr3t-client", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "opaque-refresh-value",
           "sip-pa55", "abc.def-bearer")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Logging configured into a buffer for the test; the process's previous setup restored after it."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {name: (list(lg.handlers), lg.propagate, lg.level)
             for name in _LIBRARY_LOGGERS for lg in [logging.getLogger(name)]}
    buffer = io.StringIO()
    yield buffer
    root.handlers, level = saved_root
    root.setLevel(level)
    for name, (handlers, propagate, level) in saved.items():
        library = logging.getLogger(name)
        library.handlers, library.propagate = handlers, propagate
        library.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_json_lines_have_the_documented_shape(log_output: io.StringIO) -> None:
    configure_logging("json", "worker", stream=log_output)
    logging.getLogger("teamsvoice.jobs").warning("item %s failed", 7, extra={"attempt": 2})
    [line] = lines(log_output)
    assert {"ts", "level", "logger", "msg", "component"} <= set(line)
    assert line["ts"].endswith("Z") and "T" in line["ts"]
    assert (line["level"], line["logger"], line["msg"], line["component"], line["attempt"]) == (
        "WARNING", "teamsvoice.jobs", "item 7 failed", "worker", 2)
    assert "request_id" not in line and "job_id" not in line


def test_exceptions_are_one_json_line_with_the_traceback(log_output: io.StringIO) -> None:
    configure_logging("json", "api", stream=log_output)
    try:
        raise RuntimeError("token=opaque-refresh-value broke")
    except RuntimeError:
        logging.getLogger("teamsvoice").exception("unhandled")
    [line] = lines(log_output)
    assert "RuntimeError" in line["exc"] and "opaque-refresh-value" not in line["exc"]


def test_text_format_is_readable(log_output: io.StringIO) -> None:
    configure_logging("text", "api", stream=log_output)
    with job_log_context(job_id="j1"):
        logging.getLogger("teamsvoice.x").info("hello %s", "world")
    text = log_output.getvalue()
    assert "INFO" in text and "[api] teamsvoice.x: hello world" in text and "job_id=j1" in text
    with pytest.raises(ValueError):
        configure_logging("xml", "api")  # type: ignore[arg-type]


def test_no_secret_reaches_a_log_line(log_output: io.StringIO) -> None:
    configure_logging("json", "api", stream=log_output)
    log = logging.getLogger("teamsvoice.microsoft")
    log.info("password=hunter2-pass user=alice")
    log.info('token response {"access_token": "%s", "token_type": "Bearer", "refresh_token": "opaque-refresh-value"}',
             SECRETS[2])
    log.info("POST /token client_id=app&client_secret=s3cr3t-client&grant_type=client_credentials")
    log.info("headers: Authorization: Bearer abc.def-bearer")
    log.info("sent", extra={"clientSecret": "s3cr3t-client", "body": {"sipPassword": "sip-pa55", "items": [
        {"password": "hunter2-pass"}]}, "note": "refreshToken: opaque-refresh-value"})
    text = log_output.getvalue()
    for secret in SECRETS:
        assert secret not in text
    logged = lines(log_output)
    assert logged[0]["msg"] == "password=*** user=alice"
    assert '"token_type": "Bearer"' in logged[1]["msg"]  # not a secret: left as it is
    assert "client_id=app" in logged[2]["msg"] and "grant_type=client_credentials" in logged[2]["msg"]
    assert logged[4]["clientSecret"] == "***" and logged[4]["body"]["sipPassword"] == "***"


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("assigned +41441234567 to alice@contoso.com (status=200)") == \
        "assigned +41441234567 to alice@contoso.com (status=200)"


def test_job_log_context_tags_lines_and_is_undone(log_output: io.StringIO) -> None:
    configure_logging("json", "worker", stream=log_output)
    log = logging.getLogger("teamsvoice.jobs")
    with job_log_context(job_id="bulk-1"):
        with job_log_context(item_id=42):
            log.info("assigning")
        log.info("between items")
    log.info("idle")
    assigning, between, idle = lines(log_output)
    assert (assigning["job_id"], assigning["item_id"]) == ("bulk-1", "42")
    assert between["job_id"] == "bulk-1" and "item_id" not in between
    assert "job_id" not in idle


def test_component_follows_the_logger_namespace(log_output: io.StringIO) -> None:
    configure_logging("json", "api", stream=log_output, components={"m365_emulator": "emulator", "dbos": "jobs"})
    logging.getLogger("m365_emulator.graph").warning("x")
    logging.getLogger("m365_emulatorish").warning("x")
    logging.getLogger("dbos").warning("x")
    assert [line["component"] for line in lines(log_output)] == ["emulator", "api", "jobs"]


def _probe_app() -> Starlette:
    async def item(request: Request) -> JSONResponse:
        logging.getLogger("teamsvoice.probe").info("inside the handler")
        return JSONResponse({"id": request.path_params["item_id"]})

    return Starlette(routes=[Route("/items/{item_id}", item)], middleware=[])


async def test_request_id_is_honoured_echoed_and_on_every_line(log_output: io.StringIO) -> None:
    configure_logging("json", "api", stream=log_output)
    app = RequestLogMiddleware(_probe_app())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/items/123", headers={"X-Request-ID": "client-abc_1"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "client-abc_1"
    inside, access = lines(log_output)
    assert inside["request_id"] == "client-abc_1" and inside["msg"] == "inside the handler"
    assert access["logger"] == "teamsvoice.access"
    assert (access["method"], access["route"], access["status"], access["request_id"]) == (
        "GET", "/items/{item_id}", 200, "client-abc_1")
    assert isinstance(access["duration_ms"], float) and "123" not in json.dumps(access)


@pytest.mark.parametrize("incoming", [None, "x" * 129, "caf\u00e9", " ", ""])
async def test_request_id_is_generated_when_missing_or_invalid(log_output: io.StringIO, incoming: str | None) -> None:
    configure_logging("json", "api", stream=log_output)
    app = RequestLogMiddleware(_probe_app())
    headers = {} if incoming is None else {"X-Request-ID": incoming.encode("latin-1")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        first = await http.get("/items/1", headers=headers)
        second = await http.get("/nowhere", headers=headers)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids) and ids[0] != ids[1]
    access = [line for line in lines(log_output) if line["logger"] == "teamsvoice.access"]
    assert [(a["request_id"], a["route"], a["status"]) for a in access] == [
        (ids[0], "/items/{item_id}", 200), (ids[1], "unmatched", 404)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                    microsoft_graph_url="https://graph.test/v1.0",
                    microsoft_powershell_url="https://graph.test/_powershell/invoke")


async def test_the_app_logs_each_request_with_its_route_template(log_output: io.StringIO, settings: Settings) -> None:
    from teamsvoice.app import create_app

    configure_logging("json", "api", stream=log_output)
    app = create_app(settings)  # ASGITransport runs no lifespan: no job engine
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        health = await http.get("/health", headers={"X-Request-ID": "rid-1"})
        tenant = await http.get("/api/v01/draas/main/tenants/0f7c2d9e-1111-2222-3333-444455556666")
    assert health.headers["x-request-id"] == "rid-1" and len(tenant.headers["x-request-id"]) == 32
    access = [line for line in lines(log_output) if line["logger"] == "teamsvoice.access"]
    assert [(a["route"], a["status"]) for a in access] == [
        ("/health", 200), ("/api/v01/draas/{draas_instance}/tenants/{uuid}", tenant.status_code)]
    assert all(a["component"] == "api" for a in access)


def test_uvicorn_access_lines_are_dropped_for_the_api_and_kept_for_the_emulator(log_output: io.StringIO) -> None:
    configure_logging("json", "api", stream=log_output)
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/health", "1.1", 200)
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/v1.0/users", "1.1", 200,
                extra={"component": "emulator"})
    [line] = lines(log_output)
    assert line["component"] == "emulator" and "/v1.0/users" in line["msg"]


@pytest.mark.parametrize("form", ["json", "text"])
def test_uvicorns_colour_copy_of_a_message_stays_out_of_the_line(log_output: io.StringIO, form: str) -> None:
    """uvicorn logs "Started server process" with `color_message` (the message with terminal colour codes) for
    its own formatter: a line of ours has the message once and no escape codes."""
    configure_logging(form, "serve", stream=log_output)  # type: ignore[arg-type]
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42,
                                            extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"})
    text = log_output.getvalue()
    assert "Started server process [42]" in text
    assert "color_message" not in text and "\x1b" not in text and "\\u001b" not in text


def test_the_emulator_server_marks_its_records(log_output: io.StringIO, emulator) -> None:  # type: ignore[no-untyped-def]
    configure_logging("json", "serve", stream=log_output)
    response = httpx.get(f"{emulator.url}/v1.0/users", verify=str(emulator.ca_cert_path))
    assert response.status_code == 401
    logging.getLogger("teamsvoice").info("the product's own line")
    logged = lines(log_output)
    emulator_access = [line for line in logged if line["logger"] == "uvicorn.access" and "/v1.0/users" in line["msg"]]
    assert emulator_access and all(line["component"] == "emulator" for line in emulator_access)
    assert logged[-1]["component"] == "serve"


async def test_metrics_show_microsoft_requests_and_waits_after_a_graph_call(settings: Settings) -> None:
    from teamsvoice.app import create_app

    tenant = "7D0F3C55-0000-4000-8000-00000000ABCD"
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"code": "TooManyRequests"}}),
                    httpx.Response(200, json={"value": []})])

    def microsoft(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/_powershell/invoke"):
            return httpx.Response(200, json={"output": [{"TenantId": tenant}]})
        return next(answers)

    class Identity:  # app-only tokens without Entra
        async def app_token(self, tenant_id: str, resource: str) -> str:
            return "app-token"

        def close(self) -> None:  # no connection of its own
            pass

    connector = MicrosoftConnector(settings, transport=httpx.MockTransport(microsoft))
    connector.identity = Identity()  # type: ignore[assignment]
    connector.retry = RetryPolicy(max_attempts=3, base_delay=0.001)
    connection = connector.connect(tenant, delegated_graph_token="delegated")
    assert await connection.graph.get("/users") == {"value": []}
    assert await connection.cmdlets.run("Get-CsTenant", {}) == [{"TenantId": tenant}]
    await connector.aclose()

    app = create_app(settings)  # ASGITransport runs no lifespan: no job engine
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        text = (await http.get("/metrics")).text
    tenant_label = tenant.lower()
    for sample in (
        f'teamsvoice_microsoft_requests_total{{service="graph",status="429",tenant="{tenant_label}"}}',
        f'teamsvoice_microsoft_requests_total{{service="graph",status="200",tenant="{tenant_label}"}}',
        f'teamsvoice_microsoft_requests_total{{service="cmdlets",status="200",tenant="{tenant_label}"}}',
        'teamsvoice_microsoft_retry_waits_total{reason="throttled",service="graph"}',
        'teamsvoice_microsoft_retry_wait_seconds_total{reason="throttled",service="graph"}',
    ):
        assert sample in text, sample
    for name in ("teamsvoice_bulk_items_total", "teamsvoice_job_retries_total", "teamsvoice_job_queue_depth"):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
