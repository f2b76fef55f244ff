"""The `teamsvoice` command. Heavy modules are imported inside the commands, so `--help` is instant."""

import asyncio
import json
import os
import secrets
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from teamsvoice import __version__
from teamsvoice.cli_common import (
    APP_REGISTRATION_FILE, ID_MAX, ID_MIN, DataDir, embedded_settings, fail as _fail, microsoft_settings,
    operator_keyring, operator_settings, record_emulator_address, run_command, settings_for as _settings,
)
from teamsvoice.runner import StartupError

if TYPE_CHECKING:
    from teamsvoice import demo
    from teamsvoice.core.security import Keyring
    from teamsvoice.settings import Settings

app = typer.Typer(help="teamsvoice: control plane for Microsoft Teams calling.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
LogFormat = Literal["text", "json"]
LogFormatOption = Annotated[str, typer.Option("--log-format", help="text or json (one JSON object per line).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"teamsvoice {__version__}")
        raise typer.Exit()


# The long-running processes: their writes are made by requests and jobs, which name their own actors.
SERVER_COMMANDS = frozenset({"serve", "api", "worker", "emulator"})


def operator_name(actor: str | None) -> str:
    """Who the audit log names for a CLI command's writes: `cli:<--actor>`, by default `cli:<OS user>`."""
    import getpass

    if actor is not None and not actor.strip():
        _fail("--actor must name the operator (e.g. --actor alice@provider.example)")
    try:
        name = actor.strip() if actor else getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        name = f"uid {os.getuid()}"
    return f"cli:{name}"


@app.callback()
def main(ctx: typer.Context,
         version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False,
         actor: Annotated[str | None, typer.Option(
             "--actor", help="Who is running the command, as the audit log names its changes "
                             "(recorded as cli:<actor>; default: cli:<your OS user>).")] = None) -> None:
    """teamsvoice: control plane for Microsoft Teams calling."""
    if ctx.invoked_subcommand not in SERVER_COMMANDS:
        from teamsvoice.domain.audit import context as audit

        audit.act_as_operator(operator_name(actor), source=f"teamsvoice {ctx.invoked_subcommand}")
        ctx.call_on_close(audit.stop_acting_as_operator)  # (a command run in-process, as tests do, leaves none)


def _log_format(value: str, component: str) -> None:
    if value not in ("text", "json"):
        _fail(f"--log-format must be text or json, not {value!r}")
    from teamsvoice.core.logging import configure_logging

    configure_logging(value, component)  # type: ignore[arg-type]


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def app_registration(data_dir: Path) -> dict[str, str]:
    """The embedded default's own app registration in the emulator, created once."""
    path = data_dir / APP_REGISTRATION_FILE
    if not path.exists():
        path.write_text(json.dumps({"clientId": str(uuid.uuid4()), "clientSecret": secrets.token_urlsafe(32)}))
        path.chmod(0o600)
    return json.loads(path.read_text())


async def _seed_fusion(settings: "Settings", organisation: "demo.DemoOrganisation", tenants: list[dict[str, Any]]) -> dict[str, Any]:
    """Fusion logins, tenants and subscriptions, onboarded through the real consent URL and wizard steps."""
    from teamsvoice import demo
    from teamsvoice.core.db import create_engine, session_factory, transaction
    from teamsvoice.core.security import Keyring, load_or_create_master_key

    keyring = Keyring(load_or_create_master_key(settings.secret_key, settings.data_dir))
    engine = create_engine(settings.effective_database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            seed = await demo.seed_fusion(session, keyring, organisation, tenants)
    finally:
        await engine.dispose()
    await asyncio.to_thread(demo.onboard_fusion, settings, keyring, seed)
    return demo.fusion_document(seed, settings.fusion_draas_instance)


def _reseed_refusal(path: Path) -> StartupError:
    return StartupError(f"the database has data but {path} is missing: not reseeding over it (restore the file, "
                        f"e.g. with `teamsvoice restore` of a backup, or use an empty --data-dir)")


async def _check_credentials(settings: "Settings") -> None:
    """Before anything is made in the data directory (the emulator's files, the app registration): a database
    with data and no demo credentials is refused now, not after (a start that cannot work creates nothing)."""
    from teamsvoice import demo
    from teamsvoice.core.db import create_engine, session_factory

    path = settings.data_dir / demo.CREDENTIALS_FILE
    if demo.read_credentials(path) is not None:
        return
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            if await demo.has_organisation(session):
                raise _reseed_refusal(path)
    finally:
        await engine.dispose()


async def _seed(settings: "Settings", emulator_url: str | None) -> dict[str, Any]:
    from teamsvoice import demo
    from teamsvoice.core.db import create_engine, session_factory, transaction

    path = settings.data_dir / demo.CREDENTIALS_FILE
    existing = demo.read_credentials(path)
    engine = create_engine(settings.effective_database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            organisation = await demo.seed_organisation(session)
    finally:
        await engine.dispose()
    if organisation is None:
        if existing is None:
            raise _reseed_refusal(path)
        return existing
    document: dict[str, Any] = {
        "apiUrl": settings.public_url,
        "masterReseller": organisation.master.wire(),
        "resellers": [r.wire() for r in organisation.resellers],
    }
    if emulator_url:
        tenants = await asyncio.to_thread(demo.seed_microsoft_tenants, emulator_url, settings.microsoft_ca_bundle)
        document["microsoft"] = {"loginUrl": emulator_url, "graphUrl": f"{emulator_url}/v1.0",
                                 "adminUrl": f"{emulator_url}/_admin", "caCertificate": settings.microsoft_ca_bundle,
                                 "tenants": tenants}
        document["fusion"] = await _seed_fusion(settings, organisation, tenants)
    demo.write_credentials(path, document)
    return document


async def _serve(settings: "Settings", host: str, api_socket: Any, emulator_socket: Any | None) -> None:
    from rich.console import Console

    from teamsvoice import demo, runner
    from teamsvoice.app import create_app

    console = Console()
    emulator_server = emulator_task = None
    emulator_url = None

    async def main(stop: asyncio.Event) -> None:
        nonlocal emulator_server, emulator_task, emulator_url, settings
        await _check_credentials(settings)
        if emulator_socket is not None:
            from m365_emulator.server import build_uvicorn_server
            from m365_emulator.settings import EmulatorSettings
            from m365_emulator.tls import ensure_tls_material

            emulator_dir = settings.data_dir / "m365-emulator"
            emulator_dir.mkdir(parents=True, exist_ok=True)
            tls = ensure_tls_material(emulator_dir)
            emulator_url = f"https://{_loopback(host)}:{emulator_socket.getsockname()[1]}"
            settings = embedded_settings(settings, emulator_url, tls.ca_cert_path, app_registration(settings.data_dir))
            record_emulator_address(settings.data_dir, emulator_url, tls.ca_cert_path)
            emulator_server = runner.quiet_signals(build_uvicorn_server(
                EmulatorSettings(data_dir=emulator_dir, public_url=emulator_url), host, emulator_socket.getsockname()[1]))
            emulator_task = asyncio.create_task(emulator_server.serve(sockets=[emulator_socket]))
            await runner.wait_started(emulator_server, emulator_task, "Microsoft 365 emulator")
            await asyncio.to_thread(
                demo.register_application, emulator_url, settings.microsoft_ca_bundle,
                client_id=settings.microsoft_client_id, client_secret=settings.microsoft_client_secret,
                redirect_uri=f"{settings.public_url}/restricted/handleResponse",
            )
        credentials = await _seed(settings, emulator_url)
        api = runner.server(create_app(settings), log_level="info", read_timeout=settings.request_read_timeout_seconds,
                            beside_emulator=emulator_url is not None)
        console.print(f"[bold]teamsvoice[/bold] {__version__} API  {settings.public_url}  (OpenAPI: {settings.public_url}/docs)")
        if emulator_url:
            console.print(f"Microsoft 365 emulator  {emulator_url}  (Graph: {emulator_url}/v1.0, admin: {emulator_url}/_admin)")
        console.print(f"Database                {runner.redact_url(settings.effective_database_url)}")
        console.print(f"Demo credentials        {settings.data_dir / demo.CREDENTIALS_FILE}")
        console.print(f"Master reseller login   {credentials['masterReseller']['username']}")
        try:
            # (the API's lifespan starts and stops the job engine)
            await runner.serve_until(stop, api, api_socket, once_started=runner.settle_heap)
        finally:
            if emulator_server is not None and emulator_task is not None:
                emulator_server.should_exit = True
                await emulator_task
        console.print("teamsvoice stopped")

    await runner.run_until_signal(main)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port.")] = 8080,
    data_dir: DataDir = None,
    emulator_port: Annotated[int | None, typer.Option(help="Microsoft 365 emulator port (default: API port + 1).")] = None,
    log_format: LogFormatOption = "text",
) -> None:
    """The embedded default: API, Microsoft 365 emulator and job engine in one process; migrate and seed on
    first start."""
    from teamsvoice import runner

    _log_format(log_format, "api")
    settings = _settings(data_dir)
    lock = runner.DataDirLock(settings.data_dir)
    try:
        runner.check_microsoft(settings)
        api_socket = runner.bind(host, port, "API")
        emulator_socket = (runner.bind(host, emulator_port or port + 1, "Microsoft 365 emulator")
                           if settings.microsoft_mode == "emulator" else None)
        runner.check_data_dir(settings.data_dir)
        lock.acquire(f"teamsvoice serve on {host}:{port}")
        runner.check_database(settings.effective_database_url)
        if not settings.public_url:
            settings = settings.model_copy(update={"public_url": f"http://{_loopback(host)}:{port}"})
        _migrate(settings)
        asyncio.run(_serve(settings, host, api_socket, emulator_socket))
    except StartupError as exc:
        _fail(str(exc))
    finally:
        lock.release()
    runner.exit_now(0)


def _require_shared_database(settings: "Settings", command: str) -> None:
    if settings.is_sqlite:
        _fail(f"`teamsvoice {command}` runs beside other processes on PostgreSQL: set TEAMSVOICE_DATABASE_URL="
              f"postgresql://USER:PASSWORD@HOST/DB (for one process on SQLite, use `teamsvoice serve`)")


def _migrate(settings: "Settings") -> None:
    from teamsvoice.core.db import upgrade_database

    try:
        upgrade_database(settings.effective_database_url)
    except Exception as exc:  # noqa: BLE001 - one line naming the problem, not Alembic's traceback
        raise StartupError(f"migrating the database failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port.")] = 8080,
    data_dir: DataDir = None,
    log_format: LogFormatOption = "text",
) -> None:
    """An API process (HTTP only; durable work goes to the workers). Run as many as you like on one
    PostgreSQL, behind a load balancer."""
    from teamsvoice import runner
    from teamsvoice.app import create_app

    _log_format(log_format, "api")
    settings = _settings(data_dir)
    _require_shared_database(settings, "api")
    try:
        runner.check_microsoft(settings)
        sock = runner.bind(host, port, "API")
        runner.check_database(settings.effective_database_url)
        _migrate(settings)
        if not settings.public_url:
            settings = settings.model_copy(update={"public_url": f"http://{_loopback(host)}:{port}"})
        server = runner.server(create_app(settings, jobs_role="api"), log_level="info",
                               read_timeout=settings.request_read_timeout_seconds)
        asyncio.run(runner.run_until_signal(lambda stop: runner.serve_until(stop, server, sock, once_started=runner.settle_heap)))
    except StartupError as exc:
        _fail(str(exc))
    runner.exit_now(0)


@app.command()
def worker(
    data_dir: DataDir = None,
    log_format: LogFormatOption = "text",
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics.")] = None,
) -> None:
    """A worker process: runs durable jobs (bulk items, webhooks, syncs) from the shared queues, and takes
    over the unfinished work of workers that died."""
    from teamsvoice import runner

    _log_format(log_format, "worker")
    settings = _settings(data_dir)
    _require_shared_database(settings, "worker")
    try:
        runner.check_microsoft(settings)
        if metrics_port is not None:
            from teamsvoice.core.metrics import start_metrics_server

            runner.bind("127.0.0.1", metrics_port, "metrics").close()  # a busy port: one clear line, as for the API
            start_metrics_server(metrics_port)
        runner.check_database(settings.effective_database_url)
        _migrate(settings)
        asyncio.run(runner.run_until_signal(lambda stop: _work(settings, stop)))
    except StartupError as exc:
        _fail(str(exc))
    runner.exit_now(0)


async def _work(settings: "Settings", stop: asyncio.Event) -> None:
    from teamsvoice import runner
    from teamsvoice.core.security import Keyring, load_or_create_master_key
    from teamsvoice.jobs.runtime import resume_orphaned_work, start_jobs, stop_jobs

    keyring = Keyring(load_or_create_master_key(settings.secret_key, settings.data_dir))
    await asyncio.to_thread(start_jobs, settings, keyring, role="worker")
    try:
        await asyncio.to_thread(resume_orphaned_work)
        runner.settle_heap()
        typer.echo("teamsvoice worker running (Ctrl-C to stop)")
        await stop.wait()
    finally:
        await asyncio.to_thread(stop_jobs)
    typer.echo("teamsvoice worker stopped")


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTPS port.")] = 8081,
    data_dir: Annotated[Path | None, typer.Option(
        help="The emulator's own directory (TLS CA, SQLite file) (default: m365-emulator in TEAMSVOICE_DATA_DIR, else "
             "./data/m365-emulator).", show_default=False)] = None,
    log_format: LogFormatOption = "text",
) -> None:
    """The Microsoft 365 emulator alone (Entra ID, Graph, Teams cmdlets) for api/worker processes to use."""
    from teamsvoice import runner

    _log_format(log_format, "emulator")
    if data_dir is None:
        data_dir = _settings(None).data_dir / "m365-emulator"
    try:
        sock = runner.bind(host, port, "Microsoft 365 emulator")
        runner.check_data_dir(data_dir)
        lock = runner.DataDirLock(data_dir)
        lock.acquire(f"teamsvoice emulator on {host}:{port}")
        asyncio.run(runner.run_until_signal(lambda stop: _emulate(host, sock, data_dir, stop)))
    except StartupError as exc:
        _fail(str(exc))
    runner.exit_now(0)


async def _emulate(host: str, sock: Any, data_dir: Path, stop: asyncio.Event) -> None:
    from m365_emulator.server import build_uvicorn_server
    from m365_emulator.settings import EmulatorSettings
    from m365_emulator.tls import ensure_tls_material

    from teamsvoice import runner

    url = f"https://{_loopback(host)}:{sock.getsockname()[1]}"
    tls = ensure_tls_material(data_dir.resolve())
    server = runner.quiet_signals(build_uvicorn_server(EmulatorSettings(data_dir=data_dir.resolve(), public_url=url),
                                                       host, sock.getsockname()[1]))
    typer.echo(f"Microsoft 365 emulator {url}  (CA certificate: {tls.ca_cert_path})")
    await runner.serve_until(stop, server, sock, once_started=runner.settle_heap)


@app.command()
def migrate(data_dir: DataDir = None, as_json: JsonOption = False) -> None:
    """Apply database migrations (also done by `serve`, `api` and `worker`)."""
    from teamsvoice import runner

    settings = _settings(data_dir)
    try:
        if settings.is_sqlite:
            runner.check_data_dir(settings.data_dir)
        runner.check_database(settings.effective_database_url)
        _migrate(settings)
    except StartupError as exc:
        _fail(str(exc))
    database = runner.redact_url(settings.effective_database_url)
    typer.echo(json.dumps({"migrated": database}) if as_json else f"Migrated {database}")


@app.command("register-redirect-url")
def register_redirect_url(
    reseller_id: Annotated[int, typer.Argument(help="The reseller whose consent webhooks may go to this URL.",
                                               min=ID_MIN, max=ID_MAX)],
    url: Annotated[str, typer.Argument(help="An https URL (prefix) that redirectUrls may start with.")],
    data_dir: DataDir = None,
    as_json: JsonOption = False,
) -> None:
    """Allow https redirectUrls starting with URL for a reseller (needed unless the URL is loopback)."""
    settings = operator_settings(data_dir)
    urls = run_command(_register_redirect_url(settings, reseller_id, url))
    typer.echo(json.dumps({"resellerId": reseller_id, "redirectUrlPrefixes": urls}) if as_json else
               f"Reseller {reseller_id} redirect URL prefixes: {', '.join(urls)}")


async def _register_redirect_url(settings: "Settings", reseller_id: int, url: str) -> list[str]:
    from teamsvoice.core.db import create_engine, session_factory, transaction
    from teamsvoice.domain.orgs.service import register_redirect_url as register_redirect_url_for

    engine = create_engine(settings.effective_database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            return await register_redirect_url_for(session, reseller_id, url)
    finally:
        await engine.dispose()


def _voice_settings(data_dir: Path | None, *, asks_microsoft: bool = True) -> "Settings":
    settings = operator_settings(data_dir)
    return microsoft_settings(settings) if asks_microsoft else settings


@app.command("plan")
def plan(
    tenant: Annotated[str, typer.Argument(help="Microsoft tenant id, tenant domain or enterprise id.")],
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """What apply would change in a tenant to reach its desired voice state (reads Microsoft, changes nothing)."""
    from rich.console import Console

    from teamsvoice import voice_state_cli

    result = run_command(voice_state_cli.plan_command(_voice_settings(data_dir), tenant))
    if as_json:
        typer.echo(json.dumps(result.wire(), indent=2))
    else:
        voice_state_cli.render_plan(result, Console())


@app.command("apply")
def apply(
    tenant: Annotated[str, typer.Argument(help="Microsoft tenant id, tenant domain or enterprise id.")],
    adopt: Annotated[list[str] | None, typer.Option(help="A difference id whose Microsoft value goes into teamsvoice's "
                                                   "records instead (repeatable).")] = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Converge a tenant to its desired voice state (after adopting the differences named by --adopt): the same
    apply job as the API's, run by `serve` or a worker and followed here to its end. Refused (exit 2) while another
    apply of the tenant is queued or running; exit 1 when the job failed or an operation of it did."""
    from rich.console import Console

    from teamsvoice import voice_state_cli
    from teamsvoice.domain.voice_state import workflows
    from teamsvoice.domain.voice_state.planner import Plan, difference_from_wire
    from teamsvoice.operator_cli import _exit_as_ended, _follow_other, _job_engine

    settings = _voice_settings(data_dir)
    keyring = operator_keyring(settings)  # (for the job engine that hands the job over: checked before it is recorded)
    started = run_command(voice_state_cli.start_apply(settings, tenant, adopt or []))  # committed before it is enqueued
    job_id, job_key, ref = started["jobId"], started["jobKey"], f"voice-apply:{started['jobId']}"
    if not as_json:
        for item in started["adopted"]:
            typer.echo(f"adopted {item['id']}: {item['detail']}")
        typer.echo(f"apply job {job_id} queued; it runs in `teamsvoice serve` or a worker "
                   f"(stopping here leaves it running: `teamsvoice jobs show {ref} --follow`)")
    _job_engine(settings, keyring, lambda: workflows.enqueue_apply(job_id, job_key))
    _follow_other(settings, ref, as_json)
    job = run_command(voice_state_cli.ended_apply(settings, job_id))
    if as_json:
        typer.echo(json.dumps({"adopted": started["adopted"]} | job, indent=2))
    else:
        for item in job["results"]:
            typer.echo(f"{item['status']:<6} {item['id']} ({item['stage']}): {item['detail']}")
        if job["error"]:
            typer.echo(f"apply job {job_id} {job['status']}: {job['error']}")
        after = job["after"]
        voice_state_cli.render_plan(Plan(after["tenantId"], [difference_from_wire(d) for d in after["differences"]]), Console())
    _exit_as_ended(f"apply job {job_id}", job["status"], job["status"] == "failed" or job["failed"] > 0)


@app.command("drift")
def drift(
    data_dir: DataDir = None,
    scan: Annotated[bool, typer.Option("--scan", help="Scan every linked tenant first.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON.")] = False,
) -> None:
    """Open drift events of every linked tenant: what differs from the desired state, first and last seen. With
    --scan, exit 1 naming each tenant whose scan failed (Microsoft did not answer, consent withdrawn...)."""
    from rich.console import Console

    from teamsvoice import voice_state_cli

    events, failed = run_command(voice_state_cli.drift_command(_voice_settings(data_dir, asks_microsoft=scan), scan))
    if as_json:
        typer.echo(json.dumps(events, indent=2))
    else:
        voice_state_cli.render_events(events, Console())
    for failure in failed:  # (it said "No open drift.", exit 0, when no tenant could be scanned)
        typer.echo(f"teamsvoice: could not scan {failure}; its events are those of its last scan", err=True)
    if failed:
        raise typer.Exit(1)


sbc_app = typer.Typer(help="The SBC (Kamailio) that registers PBX users to their PBX.", no_args_is_help=True)
app.add_typer(sbc_app, name="sbc")


@sbc_app.command("status")
def sbc_status(
    data_dir: DataDir = None,
    enterprise_id: Annotated[int | None, typer.Option(help="Only this enterprise's PBX users.", min=ID_MIN,
                                                      max=ID_MAX)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Each PBX user's registration as the SBC reports it, and the drift between teamsvoice and the SBC.
    Exit 0; 1 when an SBC is attached but does not answer; 2 when --enterprise-id names no enterprise, when there is
    no secret key here (none is created), or when the stored SIP passwords do not decrypt with this secret key (not
    the server's)."""
    settings = operator_settings(data_dir)
    keyring = operator_keyring(settings)
    report = run_command(asyncio.to_thread(_registration_report, settings, keyring, enterprise_id))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_sbc_report(report)
    if report["sbcAttached"] and not report["reachable"]:
        raise typer.Exit(1)


def _registration_report(settings: "Settings", keyring: "Keyring", enterprise_id: int | None) -> dict[str, Any]:
    """`sbc status`'s report, read in one transaction (in a thread of `run_command`: the SBC is asked synchronously).
    Its failures are `run_command`'s lines: a transient database failure, and the SIP passwords that do not decrypt
    with this process's secret key, which the SBC's desired state needs (both were tracebacks, exit 1)."""
    from cryptography.exceptions import InvalidTag

    from teamsvoice.api.connecttoteams.calling_wire import render_registrations
    from teamsvoice.core.db import create_blocking_engine, sync_transaction
    from teamsvoice.core.errors import NotFound, PreconditionFailed
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.domain.sbc.service import registration_status
    from teamsvoice.sbc import sbc_from_settings

    engine = create_blocking_engine(settings.effective_database_url)
    try:
        with sync_transaction(engine) as session:
            if enterprise_id is not None and session.get(Enterprise, enterprise_id) is None:
                raise NotFound(f"Enterprise {enterprise_id} not found")  # (its report was an empty one, exit 0)
            try:
                report = registration_status(session, keyring, sbc_from_settings(settings), settings, enterprise_id)
            except InvalidTag:
                raise PreconditionFailed(
                    "the stored SIP passwords do not decrypt with this secret key: run it with the server's "
                    "TEAMSVOICE_SECRET_KEY (or, when the server has none, its --data-dir, whose secret.key it uses)"
                ) from None
            return render_registrations(report)
    finally:
        engine.dispose()


def _print_sbc_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if report["message"]:
        console.print(report["message"], highlight=False)
    if report["sbcAttached"] and report["reachable"]:
        console.print(f"SBC: {report['sbc']} (reachable)")
    if not report["users"]:
        console.print("No PBX users.")
    table = Table("id", "enterprise", "Teams user", "PBX user", "PBX location", "registration", "next REGISTER in",
                  "up to date")
    for user in report["users"]:
        table.add_row(str(user["id"]), str(user["enterpriseId"]), user["teamsUserId"], user["pbxUserId"],
                      user["pbxLocation"], user["registration"],
                      "" if user["nextRegisterIn"] is None else f"{user['nextRegisterIn']} s",
                      "" if user["upToDate"] is None else ("yes" if user["upToDate"] else "no"))
    if report["users"]:
        console.print(table)
    for drift in report["drift"]:
        console.print(f"drift: {drift['kind']} {drift.get('teamsUserId') or drift.get('registration')}: {drift['detail']}",
                      highlight=False)


@sbc_app.command("init-db")
def sbc_init_db(data_dir: DataDir = None, as_json: JsonOption = False) -> None:
    """Create the tables Kamailio reads (uacreg, dispatcher, version) in TEAMSVOICE_SBC_KAMAILIO_DB_URL; run once
    before Kamailio's first start (the SBC sync also creates them when missing)."""
    from teamsvoice.domain.sbc.ports import SbcUnavailable
    from teamsvoice.sbc import sbc_from_settings

    sbc = sbc_from_settings(_settings(data_dir))
    if sbc is None:
        _fail("no SBC is attached: set TEAMSVOICE_SBC_KAMAILIO_DB_URL and TEAMSVOICE_SBC_KAMAILIO_RPC_URL")
    try:
        sbc.ensure_schema()
    except SbcUnavailable as exc:
        _fail(exc.message)
    tables = ["uacreg", "dispatcher", "version"]
    typer.echo(json.dumps({"ready": tables}) if as_json else f"Kamailio's tables are ready ({', '.join(tables)})")


# Operator commands (teamsvoice/operator_cli.py): customers, jobs, CSV imports, users, checks and backups.
from teamsvoice.operator_cli import backup, bulk_app, doctor, jobs_app, restore, tenants_app, users_app  # noqa: E402  (light: typer only)

app.add_typer(tenants_app, name="tenants")
app.add_typer(jobs_app, name="jobs")
app.add_typer(bulk_app, name="bulk")
app.add_typer(users_app, name="users")
app.command("doctor", short_help="Check database, migrations, job engine, Microsoft and consent per tenant.")(doctor)
app.command("backup", short_help="Back up the embedded SQLite default into one archive, while it runs.")(backup)
app.command("restore", short_help="Restore a backup into a stopped embedded default.")(restore)
