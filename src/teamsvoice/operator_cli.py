"""Operator commands without a browser: `tenants list`, `jobs list|show|cancel|retry`, `bulk import`,
`users export`, `doctor`, `backup` and `restore`.

They talk to the database directly (the settings of `--data-dir` and TEAMSVOICE_* variables, as `serve`,
`api` and `worker` do), with an operator's reach: every customer of the deployment. Work that changes
Microsoft is recorded like the console and the Fusion API do and handed to the job engine (as an `api`
process: the job runs in `serve` or a `worker`); with `--dry-run`, `bulk import` only checks the rows.
`users export` and `doctor` ask Microsoft themselves, with the server's TEAMSVOICE_MICROSOFT_* settings (on the
embedded default, those `serve` recorded in the data directory at its last start).
`--json` prints machine-readable output. Exit codes: 0 done; 1 done, but something failed (a row refused,
an item failed, a doctor check failed); 2 not done (bad input, not found, refused), one line on stderr.
Heavy modules are imported inside the commands, so `teamsvoice --help` stays instant.
"""

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from teamsvoice.cli_common import (ID_MAX, ID_MIN, DataDir, embedded_microsoft, microsoft_settings, operator_keyring,
                                   operator_settings)
from teamsvoice.cli_common import fail as _fail, run_command, settings_for as _settings, sqlite_path as _sqlite_path

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from teamsvoice.core.security import Keyring
    from teamsvoice.settings import Settings

T = TypeVar("T")
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]

tenants_app = typer.Typer(help="Customers (Fusion tenants and ConnecttoTeams enterprises).", no_args_is_help=True)
jobs_app = typer.Typer(help="Durable jobs of every kind: list, show and follow, cancel, retry.", no_args_is_help=True)
bulk_app = typer.Typer(help="Bulk updates of Teams users from a CSV file.", no_args_is_help=True)
users_app = typer.Typer(help="Teams users of a customer tenant.", no_args_is_help=True)
Follow = Annotated[bool, typer.Option("--follow", "--watch", "-f",
                                      help="Follow the job with a live progress bar until it ends.")]


def _with_sessions(settings: "Settings", work: Callable[["async_sessionmaker[AsyncSession]"], Awaitable[T]]) -> T:
    """Runs `work` with sessions of one engine (one connection for all its transactions: a poll loop's reads)."""
    from teamsvoice.core.db import create_engine, session_factory

    async def run() -> T:
        engine = create_engine(settings.effective_database_url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return run_command(run())


def _with_session(settings: "Settings", work: Callable[["AsyncSession"], Awaitable[T]]) -> T:
    """Runs `work` in one transaction."""
    from teamsvoice.core.db import transaction

    async def once(sessions: "async_sessionmaker[AsyncSession]") -> T:
        async with transaction(sessions) as session:
            return await work(session)

    return _with_sessions(settings, once)


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    """A table fitted to the terminal; into a pipe or file, as wide as its content (values never wrapped)."""
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console(width=None if sys.stdout.isatty() else 10_000).print(table)


# --- tenants --------------------------------------------------------------------------------------------


async def customers(session: "AsyncSession") -> list[dict[str, Any]]:
    """Every enterprise with its onboarding state; the Fusion tenant and subscription it backs, if any."""
    from sqlalchemy import select

    from teamsvoice.domain.consent.repository import consents_of
    from teamsvoice.domain.fusion import numbers, onboarding
    from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
    from teamsvoice.domain.orgs.models import Enterprise, Reseller

    resellers = {r.id: r.name for r in await session.scalars(select(Reseller))}
    backing = {s.enterprise_id: (s, t) for s, t in (await session.execute(select(FusionSubscription, FusionTenant).join(
        FusionTenant, FusionTenant.id == FusionSubscription.fusion_tenant_id))).all()}
    rows = []
    for enterprise in await session.scalars(select(Enterprise).order_by(Enterprise.id)):
        row: dict[str, Any] = {
            "enterpriseId": enterprise.id, "name": enterprise.enterprise_name, "reseller": resellers.get(enterprise.reseller_id),
            "registered": enterprise.registered, "msTenantId": enterprise.tenant_id,
            "consents": [c.consent_name for c in await consents_of(session, enterprise.id)]}
        if enterprise.id in backing:
            subscription, tenant = backing[enterprise.id]
            run = await onboarding.latest_run(session, subscription.id)
            total, free, assigned = await numbers.count_numbers(session, subscription.id)
            row |= {"fusionTenant": tenant.name, "fusionTenantUuid": tenant.uuid, "subscriptionId": subscription.id,
                    "onboarding": "onboarded" if enterprise.registered and enterprise.tenant_id else
                    (run.status if run else "not_initiated"),
                    "numbers": {"total": total, "free": free, "assigned": assigned}}
        else:
            row["onboarding"] = "registered" if enterprise.registered else "not registered"
        rows.append(row)
    return rows


@tenants_app.command("list")
def tenants_list(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Every customer with its onboarding state, MS tenant, consents and number counts."""
    rows = _with_session(operator_settings(data_dir), customers)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(["enterprise", "customer", "reseller", "subscription", "onboarding", "MS tenant", "numbers free/assigned",
            "consents"],
           [[r["enterpriseId"], r.get("fusionTenant") or r["name"], r["reseller"], r.get("subscriptionId"), r["onboarding"],
             r["msTenantId"], f"{r['numbers']['free']}/{r['numbers']['assigned']}" if "numbers" in r else "",
             ", ".join(r["consents"])] for r in rows])


# --- jobs -----------------------------------------------------------------------------------------------


async def _job(session: "AsyncSession", job_id: int) -> Any:
    from teamsvoice.core.errors import NotFound
    from teamsvoice.domain.teams_users.models import FusionBulkJob

    job = await session.get(FusionBulkJob, job_id)
    if job is None:
        raise NotFound(f"Bulk job {job_id} not found")
    return job


JobRef = Annotated[str, typer.Argument(help="The job: KIND:ID (kinds: bulk, webhook, drift-webhook, wizard, sync, resource-account, "
                                            "voice-apply; see `jobs list`), or a bulk job's bare id.")]


@jobs_app.command("list")
def jobs_list(data_dir: DataDir = None, as_json: Json = False,
              kind: Annotated[str | None, typer.Option(help="Only this kind: bulk, webhook, drift-webhook, wizard, sync, "
                                                            "resource-account, voice-apply.")] = None,
              status: Annotated[str | None, typer.Option(help="Only jobs in this status (e.g. queued, running, pending, "
                                                              "error, failed, cancelled).")] = None,
              limit: Annotated[int, typer.Option(help="At most this many jobs of each kind, the newest.")] = 100) -> None:
    """Durable jobs of every kind and customer, newest first: status, progress, attempts, last error, and
    whether each can be retried or cancelled. Says so when a kind had more than --limit."""
    from teamsvoice.domain.jobs import catalogue

    if limit < 1:
        _fail(f"--limit must be 1 or more, not {limit}")
    limit = min(limit, ID_MAX - 1)  # (no kind has more jobs; a larger one reached the driver: OverflowError traceback)
    jobs, cut = _with_session(operator_settings(data_dir),
                              lambda s: catalogue.listing(s, None, kind=kind, status=status, limit=limit))
    if as_json:
        typer.echo(json.dumps([j.render() for j in jobs], indent=2))
    else:
        _table(["job", "kind", "customer", "title", "status", "done", "attempts", "last error", "started"],
               [[j.ref, j.label, j.customer, j.title, j.status, f"{j.done}/{j.total}" if j.total is not None else "",
                 j.attempts, j.last_error, j.started.isoformat()[:19]] for j in jobs])
    if cut:  # (with --json on stderr: stdout stays the list)
        typer.echo(f"Only the newest {limit} jobs of each kind are listed: there are more (--limit N for more)",
                   err=as_json)


async def _details(session: "AsyncSession", job_id: int) -> dict[str, Any]:
    from sqlalchemy import select

    from teamsvoice.domain.teams_users import bulk
    from teamsvoice.domain.teams_users.models import FusionBulkItem

    job = await _job(session, job_id)
    items = await session.scalars(select(FusionBulkItem).where(FusionBulkItem.job_id == job_id).order_by(FusionBulkItem.position))
    summary = bulk.job_summary(job)  # the CLI's document: the summary's fields (dates in ISO 8601) and the items
    return (dataclasses.asdict(summary) | {"created_on": summary.created_on.isoformat(),
                                           "updated_on": summary.updated_on.isoformat(),
                                           "job_items": [bulk.item_view(i) for i in items]})


def _watch(settings: "Settings", job_id: int, as_json: bool) -> dict[str, Any]:
    """Follows the job until it ends, with a progress bar (none with --json): every half second a read of the job's
    row alone (its status and counts), all on one connection; the items are read once, when it has ended. (Each poll
    read every item, on a new connection: over a 1,000-item job the CLI spent 11 to 14 s of CPU on it, and the database
    served those reads beside the job's own work.)"""
    from contextlib import nullcontext

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from teamsvoice.core.db import transaction
    from teamsvoice.domain.teams_users.bulk import FINAL, JobSummary, job_summary

    async def follow(sessions: "async_sessionmaker[AsyncSession]") -> dict[str, Any]:
        async def progress() -> JobSummary:
            async with transaction(sessions) as session:
                return job_summary(await _job(session, job_id))

        summary = await progress()
        bar = None if as_json else Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                            TimeElapsedColumn())
        with bar if bar is not None else nullcontext():
            task = bar.add_task(f"job {job_id} {summary.status}", total=summary.total_count) if bar is not None else None
            while True:
                if bar is not None and task is not None:  # (both or neither: --json has no bar)
                    bar.update(task, completed=summary.processed_count, description=f"job {job_id} {summary.status}")
                if summary.status in FINAL:
                    break
                await asyncio.sleep(0.5)
                summary = await progress()
        async with transaction(sessions) as session:
            return await _details(session, job_id)

    return _with_sessions(settings, follow)


def _print_details(details: dict[str, Any]) -> None:
    typer.echo(f"job {details['id']} '{details['title']}': {details['status']}, {details['processed_count']}/"
               f"{details['total_count']} done, {details['success_count']} succeeded, {details['error_count']} failed")
    from teamsvoice.domain.teams_users.bulk import error_text

    _table(["user", "status", "attempts", "error"],
           [[i["upn"], i["status"], i["attempts"], error_text(i.get("error"), i.get("lastError"))] for i in details["job_items"]])


def _exit_as_ended(ref: str, status: str, failed: bool) -> None:
    """The exit status of a job followed to its end (any kind): 1 when it failed or was cancelled (said on stderr:
    a cancelled bulk job, 0 of 30 done, was exit 0), else 0."""
    if status == "cancelled":
        _fail(f"{ref} was cancelled", 1)
    if failed:
        raise typer.Exit(1)


def _report_ended(details: dict[str, Any], as_json: bool) -> None:
    """A bulk job followed to its end: printed, and exit 1 when items failed or it was cancelled."""
    if as_json:
        typer.echo(json.dumps(details, indent=2))
    else:
        _print_details(details)
    _exit_as_ended(f"bulk job {details['id']}", details["status"], details["error_count"] > 0)


def _report_other_ended(job: dict[str, Any], as_json: bool) -> None:
    """A job of another kind followed to its end: printed, and exit 1 when it failed or was cancelled."""
    typer.echo(json.dumps(job, indent=2)) if as_json else _print_job(job)
    _exit_as_ended(job["ref"], job["status"], job["status"] in ("error", "failed", "refused"))


def _bulk_id(ref: str) -> int | None:
    from teamsvoice.domain.jobs import catalogue

    try:
        kind, number = catalogue.parse_ref(ref)
    except Exception as exc:  # noqa: BLE001 - a ValidationFailed: said in words
        _fail(getattr(exc, "message", str(exc)))
        raise
    return number if kind == "bulk" else None


def _print_job(job: dict[str, Any]) -> None:
    progress = f", {job['done']}/{job['total']} done" if job["total"] is not None else ""
    attempts = f", {job['attempts']} attempt(s)" if job["attempts"] is not None else ""
    typer.echo(f"{job['ref']} {job['label']} '{job['title']}' of {job['customer']}: {job['status']}{progress}{attempts}")
    if job["last_error"]:
        typer.echo(f"  last error: {job['last_error']}")
    typer.echo(f"  retry: {'possible' if job['canRetry'] else 'no, ' + job['retry_refusal']}")
    typer.echo(f"  cancel: {'possible' if job['canCancel'] else 'no, ' + job['cancel_refusal']}")


async def _rendered(session: "AsyncSession", ref: str) -> dict[str, Any]:
    """The job `ref` names (any kind), as `jobs show` prints it."""
    from teamsvoice.domain.jobs import catalogue

    return (await catalogue.find(session, None, ref)).render()


def _shown(settings: "Settings", ref: str) -> dict[str, Any]:
    return _with_session(settings, lambda session: _rendered(session, ref))


def _follow_other(settings: "Settings", ref: str, as_json: bool) -> dict[str, Any]:
    """Polls a job that is not a bulk job until it is no longer queued or running (every half second, one
    connection for all the reads); prints a line when its status or progress changes (not at every poll)."""
    from teamsvoice.core.db import transaction

    async def follow(sessions: "async_sessionmaker[AsyncSession]") -> dict[str, Any]:
        said = None
        while True:
            async with transaction(sessions) as session:
                job = await _rendered(session, ref)
            if job["status"] not in ("queued", "running", "pending", "creating", "updating", "deleting"):
                return job
            line = f"{job['ref']}: {job['status']}" + (f" ({job['done']}/{job['total']})" if job["total"] else "")
            if not as_json and line != said:
                typer.echo(line)
                said = line
            await asyncio.sleep(0.5)

    return _with_sessions(settings, follow)


@jobs_app.command("show")
def jobs_show(ref: JobRef, data_dir: DataDir = None, as_json: Json = False, follow: Follow = False) -> None:
    """One job: status, progress, attempts, last error, whether it can be retried or cancelled (and why not);
    a bulk job with each item. With --follow, until it ends (exit 1 when it ends with failures or cancelled)."""
    settings = operator_settings(data_dir)
    job_id = _bulk_id(ref)
    if job_id is None:
        if follow:
            _report_other_ended(_follow_other(settings, ref, as_json), as_json)
            return
        job = _shown(settings, ref)
        typer.echo(json.dumps(job, indent=2)) if as_json else _print_job(job)
        return
    if follow:
        _report_ended(_watch(settings, job_id, as_json), as_json)
        return
    details = _with_session(settings, lambda s: _details(s, job_id))
    if as_json:
        typer.echo(json.dumps(details, indent=2))
    else:
        _print_details(details)


def _job_engine(settings: "Settings", keyring: "Keyring", follow_up: Any) -> None:
    """Runs a retry's or cancel's follow-up (enqueue, or stop the workflow) as an `api` process would, on
    behalf of the operator. Should this fail, a retried job is resumed by the next `serve` or worker start. The
    engine's `api` role runs no job step, so it needs no Microsoft here (in cloud mode, no Teams PowerShell on an
    admin host); `keyring` is the servers' (`operator_keyring`, loaded before the work was recorded)."""
    import anyio

    from teamsvoice.domain.audit import context as audit
    from teamsvoice.jobs.runtime import start_jobs, stop_jobs

    start_jobs(settings, keyring, role="api")
    try:
        with audit.operator_submitting():
            anyio.run(follow_up)
    finally:
        stop_jobs()


@jobs_app.command("cancel")
def jobs_cancel(ref: JobRef, data_dir: DataDir = None, as_json: Json = False) -> None:
    """Stop a queued or running job: it is recorded as cancelled and its workflow stopped; what was already done
    stays done. Exit 2, saying why, for a job that cannot be cancelled."""
    from teamsvoice.domain.jobs import catalogue

    settings = operator_settings(data_dir)
    # Another job's workflow is stopped by the job engine here: its key checked before the cancel is recorded (a bulk
    # job's cancel is only recorded: its items stop at their next try).
    keyring = operator_keyring(settings) if _bulk_id(ref) is None else None
    job, follow_up = _with_session(settings, lambda s: catalogue.cancel(s, None, ref))  # committed first
    if follow_up is not None:
        _job_engine(settings, keyring or operator_keyring(settings), follow_up)
    if as_json:
        typer.echo(json.dumps(job.render(), indent=2))
    else:
        typer.echo(f"{job.ref} cancelled" + (f" ({job.done}/{job.total} had finished)" if job.total is not None else ""))


@jobs_app.command("retry")
def jobs_retry(ref: JobRef, data_dir: DataDir = None, as_json: Json = False, follow: Follow = False) -> None:
    """Run a failed or cancelled job again, in `teamsvoice serve` or a worker, without redoing what succeeded (a
    bulk job: its failed and cancelled items only). Exit 2, saying why, when it cannot be retried (still
    running, nothing failed, ...); with --follow, exit 1 when it fails again or is cancelled."""
    from teamsvoice.domain.jobs import catalogue

    settings = operator_settings(data_dir)
    job_id = _bulk_id(ref)
    keyring = operator_keyring(settings)  # (for the job engine that hands the retry over: before it is recorded)

    async def retry(session: "AsyncSession") -> tuple[Any, Any, int]:
        job, follow_up = await catalogue.retry(session, None, ref)
        count = 0
        if job_id is not None:  # a bulk job: its items that run again (all but the succeeded)
            row = await _job(session, job_id)
            count = row.total_count - row.success_count
        return job, follow_up, count

    job, follow_up, count = _with_session(settings, retry)  # committed before it is enqueued
    _job_engine(settings, keyring, follow_up)
    if job_id is None:
        if follow:
            _report_other_ended(_follow_other(settings, job.ref, as_json), as_json)
            return
        shown = job.render()
        typer.echo(json.dumps(shown, indent=2)) if as_json else _print_job(shown)
        return
    if not follow:
        summary = _with_session(settings, lambda s: _details(s, job_id))
        typer.echo(json.dumps(summary | {"retried_count": count}, indent=2) if as_json else
                   f"job {job_id}: {count} item(s) queued again; follow it with `teamsvoice jobs show {job_id} --follow`")
        return
    if not as_json:
        typer.echo(f"job {job_id}: {count} item(s) queued again")
    _report_ended(_watch(settings, job_id, as_json) | {"retried_count": count}, as_json)


# --- bulk import ----------------------------------------------------------------------------------------


@bulk_app.command("import")
def bulk_import(
    file: Annotated[Path, typer.Argument(help="CSV: upn,number,vrp,country,displayName,groups,licenses (see README).")],
    subscription: Annotated[int, typer.Option(help="The Fusion subscription id (teamsvoice tenants list).",
                                              min=ID_MIN, max=ID_MAX)],
    data_dir: DataDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only check the rows; change nothing.")] = False,
    name: Annotated[str, typer.Option(help="The job's name.")] = "CLI CSV import",
    results: Annotated[Path | None, typer.Option(help="Write the per-row results here (CSV).")] = None,
    as_json: Json = False,
) -> None:
    """Check the rows (each error named with its line), then run them as one bulk job and follow it to the end.
    Exit 1 when a row is refused, an item fails or the job is cancelled."""
    from teamsvoice.domain.teams_users import bulk
    from teamsvoice.domain.teams_users.bulk_csv import preview_rows

    _check_job_name(name)  # (a dry run too: it said the rows were valid under a name the real run then refused)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
        raise
    if results is not None:
        _check_writable(results)  # before anything runs: the job ran, then writing its results failed
    settings = operator_settings(data_dir)

    async def check(session: "AsyncSession") -> list[dict[str, Any]]:
        return await preview_rows(session, await bulk.load_access(session, subscription), text)

    rows = _with_session(settings, check)
    refused = [r for r in rows if r["errors"]]
    if dry_run or refused:
        report = {"dryRun": dry_run, "rows": len(rows), "valid": len(rows) - len(refused),
                  "errors": [{"line": r["line"], "upn": r["upn"], "errors": r["errors"]} for r in refused]}
        if results is not None:
            _write_results(results, ["line", "upn", "status", "error"],
                           [[r["line"], r["upn"], "error" if r["errors"] else "ok", "; ".join(r["errors"])] for r in rows])
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            for r in refused:
                typer.echo(f"line {r['line']} ({r['upn'] or 'no upn'}): {'; '.join(r['errors'])}")
            typer.echo(f"{report['valid']} of {len(rows)} rows are valid" + ("" if dry_run else "; nothing was run"))
        if refused:
            raise typer.Exit(1)
        return
    keyring = operator_keyring(settings)  # (for the job engine that hands the job over: checked before it is recorded)
    summary = _run_bulk(settings, keyring, subscription, name, [r["item"] for r in rows], as_json)
    if results is not None:
        _write_results(results, ["upn", "status", "attempts", "error"],
                       [[item["upn"], item["status"], item["attempts"], (item.get("error") or {}).get("message", "")]
                        for item in summary["job_items"]])
    _report_ended(summary, as_json)


def _check_job_name(name: str) -> None:
    """--name as `bulk.create_job` takes a job's name (`bulk.job_name`), refused (exit 2) before anything runs, with
    `--dry-run` too."""
    from teamsvoice.core.errors import ValidationFailed
    from teamsvoice.domain.teams_users.bulk import job_name

    try:
        job_name(name)
    except ValidationFailed as exc:
        _fail(f"--name: {exc.message.removeprefix('name: ')}")


def _check_writable(path: Path) -> None:
    """Exit 2 unless `path` can be written, changing nothing: an existing file is opened to append (and closed), a
    new one created and removed."""
    try:
        if path.exists():
            path.open("a").close()
        else:
            path.open("x").close()
            path.unlink()
    except OSError as exc:
        _fail(f"cannot write the results to {path}: {exc.strerror}")


def _write_results(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    from teamsvoice.core.spreadsheet import csv_writer

    try:
        with path.open("w", newline="") as out:
            writer = csv_writer(out)
            writer.writerow(header)
            writer.writerows(rows)
    except OSError as exc:  # (checked before the job ran; something changed since)
        _fail(f"cannot write the results to {path}: {exc.strerror}")


def _run_bulk(settings: "Settings", keyring: "Keyring", subscription: int, name: str, items: list[dict[str, Any]],
              as_json: bool) -> dict[str, Any]:
    """Records the job, enqueues it as an `api` process would (the job engine of `serve` or a worker runs it),
    and follows it to the end."""
    from teamsvoice.domain.teams_users import bulk

    async def create(session: "AsyncSession") -> tuple[str, int]:
        job = await bulk.create_job(session, await bulk.load_access(session, subscription), name, items)
        return job.job_key, job.id

    job_key, job_id = _with_session(settings, create)
    _enqueue_bulk(settings, keyring, job_key, job_id)
    if not as_json:
        typer.echo(f"bulk job {job_id} queued ({len(items)} users); it runs in `teamsvoice serve` or a worker")
    return _watch(settings, job_id, as_json)


def _enqueue_bulk(settings: "Settings", keyring: "Keyring", job_key: str, job_id: int) -> None:
    from teamsvoice.domain.teams_users import workflows

    _job_engine(settings, keyring, lambda: workflows.enqueue_bulk(job_key, job_id))


# --- users export ---------------------------------------------------------------------------------------

EXPORT_COLUMNS = ["userPrincipalName", "displayName", "id", "accountEnabled", "usageLocation", "licenses",
                  "voiceEnabled", "enterpriseVoice", "phoneNumbers", "voiceRoutingPolicy", "teamsvoiceStatus",
                  "teamsvoicePhoneNumber", "teamsvoicePolicy"]


async def export_users(settings: "Settings", tenant: str) -> list[dict[str, Any]]:
    """Every user of the tenant as Microsoft has it (directory, licences, Teams numbers and voice routing
    policy, read in bulk), beside what teamsvoice recorded for it (status of its last sync, the number and
    policy teamsvoice assigned). Records are read first; Microsoft is asked with no transaction open."""
    from sqlalchemy import select

    from teamsvoice.core.db import create_engine, session_factory, transaction
    from teamsvoice.domain.provisioning.models import TeamsVoiceUser
    from teamsvoice.domain.teams_users import service
    from teamsvoice.microsoft.connector import MicrosoftConnector
    from teamsvoice.microsoft.voice_state import tenant_voice
    from teamsvoice.voice_state_cli import _enterprise

    engine = create_engine(settings.effective_database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            enterprise = await _enterprise(session, tenant)
            tenant_id = enterprise.tenant_id or ""
            records = {r.microsoft_user_id: r for r in await session.scalars(
                select(TeamsVoiceUser).where(TeamsVoiceUser.enterprise_id == enterprise.id))}
    finally:
        await engine.dispose()
    connector = MicrosoftConnector(settings)
    try:
        connection = connector.connect(tenant_id)
        admin = connection.directory_admin
        skus = await service.sku_map(admin)
        voice = {v.user_id: v for v in await tenant_voice(connection).voice_users()}
        rows = []
        async for user in admin.users(page_size=999):
            state, record = voice.get(user.id), records.get(user.id)
            rows.append({
                "userPrincipalName": user.user_principal_name, "displayName": user.display_name, "id": user.id,
                "accountEnabled": user.account_enabled, "usageLocation": user.usage_location,
                "licenses": [entry["skuPartNumber"] for entry in service.render_licences(user, skus)],
                "voiceEnabled": service.voice_enabled(user, skus),
                "enterpriseVoice": state.enterprise_voice if state else False,
                "phoneNumbers": state.phone_numbers if state else [],
                "voiceRoutingPolicy": (state.voice_routing_policy if state else None) or "Global",
                "teamsvoiceStatus": service.sync_status(record) if record else "not managed",
                "teamsvoicePhoneNumber": record.phone_number if record else None,
                "teamsvoicePolicy": record.voice_routing_policy if record else None,
            })
        return sorted(rows, key=lambda r: r["userPrincipalName"].lower())
    finally:
        await connector.aclose()


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


@users_app.command("export")
def users_export(
    tenant: Annotated[str, typer.Option(help="The customer: enterprise id, Microsoft tenant id or tenant domain.")],
    data_dir: DataDir = None,
    as_json: Json = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write the users to this CSV file.")] = None,
) -> None:
    """Every user of the customer's tenant with number, voice routing policy, licences and status.

    Users, licences, numbers and policies are read from Microsoft (Graph users and Teams user configurations,
    in bulk): that is what the users really have, including changes made outside teamsvoice and users it never
    touched. teamsvoice's own records are shown beside them (teamsvoiceStatus: active, pending, error or not
    managed; the number and policy teamsvoice assigned), so a difference between the two is visible.
    Needs the server's TEAMSVOICE_MICROSOFT_* settings (the embedded default's are read from its data directory:
    `serve` must be running, it serves the emulator)."""
    from teamsvoice.core.spreadsheet import csv_writer

    settings = microsoft_settings(operator_settings(data_dir))
    rows = run_command(export_users(settings, tenant))
    if csv_file is not None:
        try:
            with csv_file.open("w", newline="", encoding="utf-8") as out:
                writer = csv_writer(out)
                writer.writerow(EXPORT_COLUMNS)
                writer.writerows([[_cell(row[c]) for c in EXPORT_COLUMNS] for row in rows])
        except OSError as exc:
            _fail(f"cannot write {csv_file}: {exc.strerror}")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif csv_file is not None:
        typer.echo(f"{len(rows)} users written to {csv_file}")
    else:
        _table(["user", "enabled", "licences", "voice", "numbers", "policy", "teamsvoice"],
               [[r["userPrincipalName"], _cell(r["accountEnabled"]), ", ".join(r["licenses"]), r["voiceEnabled"],
                 ", ".join(r["phoneNumbers"]), r["voiceRoutingPolicy"], r["teamsvoiceStatus"]] for r in rows])


# --- doctor ---------------------------------------------------------------------------------------------


def _check(name: str, ok: bool | None, detail: str, fix: str = "") -> dict[str, Any]:
    """ok None: skipped, because a check it depends on failed."""
    return {"check": name, "status": "ok" if ok else ("skipped" if ok is None else "failed"), "detail": detail,
            **({"fix": fix} if fix and ok is False else {})}


def _doctor_storage(settings: "Settings") -> list[dict[str, Any]]:
    import os
    import stat

    from teamsvoice import runner

    checks = []
    if not settings.data_dir.is_dir():
        return [_check("data directory", False, f"{settings.data_dir} does not exist",
                       "pass the server's --data-dir, or create it with `teamsvoice migrate --data-dir ...`")]
    try:
        runner.check_data_dir(settings.data_dir)
        problems = []
        key = settings.data_dir / "secret.key"
        if key.exists() and stat.S_IMODE(key.stat().st_mode) & 0o077:
            problems.append(f"{key} is readable by other users")
        for name in ("teamsvoice.sqlite3", "teamsvoice-jobs.sqlite3"):
            path = settings.data_dir / name
            if settings.is_sqlite and path.exists() and not os.access(path, os.R_OK | os.W_OK):
                problems.append(f"{path} is not readable and writable by this user")
        checks.append(_check("data directory", not problems, "; ".join(problems) or f"{settings.data_dir} is writable",
                             f"chmod 600 {key}; make the data directory's files belong to the user running teamsvoice"))
    except runner.StartupError as exc:
        checks.append(_check("data directory", False, str(exc), "fix its permissions or pass --data-dir"))
    return checks


def _doctor_database(settings: "Settings") -> tuple[list[dict[str, Any]], bool]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from teamsvoice import runner
    from teamsvoice.core.db import MIGRATIONS_DIR, create_blocking_engine

    url = settings.effective_database_url
    where = runner.redact_url(url)
    if settings.is_sqlite and not _sqlite_path(url).exists():
        return [_check("database", False, f"{where} does not exist yet",
                       "run `teamsvoice migrate` (or start `teamsvoice serve`, which creates it)"),
                _check("migrations", None, "no database")], False
    try:
        runner.check_database(url)
        engine = create_blocking_engine(url)
        try:
            with engine.connect() as connection:
                current = set(MigrationContext.configure(connection).get_current_heads())
        finally:
            engine.dispose()
    except runner.StartupError as exc:
        return [_check("database", False, str(exc), "check TEAMSVOICE_DATABASE_URL and that the database runs"),
                _check("migrations", None, "no database")], False
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return [_check("database", False, f"cannot read {where}: {reason}", "check the database file or server"),
                _check("migrations", None, "no database")], False
    heads = set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
    checks = [_check("database", True, f"{where} answers")]
    if current == heads:
        checks.append(_check("migrations", True, f"at head ({len(heads)} branch head(s))"))
    else:
        known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}
        newer = sorted(current - known)
        checks.append(_check("migrations", False,
                             f"the database has revision(s) {', '.join(newer)} this teamsvoice does not know" if newer else
                             f"behind: {len(heads - current)} branch head(s) not applied",
                             "upgrade teamsvoice to the release that migrated this database" if newer else
                             "run `teamsvoice migrate` (serve, api and worker also migrate at start)"))
    return checks, current == heads


def _doctor_jobs(settings: "Settings") -> list[dict[str, Any]]:
    from datetime import timedelta

    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    from teamsvoice.core.clock import utcnow
    from teamsvoice.core.db import create_blocking_engine, sync_transaction
    from teamsvoice.jobs import repository as jobs_repository
    from teamsvoice.jobs.runtime import system_database_url

    checks = []
    system_url = system_database_url(settings)
    schema = None if settings.is_sqlite else "dbos"
    if settings.is_sqlite and not _sqlite_path(system_url).exists():
        checks.append(_check("job engine tables", False, f"{_sqlite_path(system_url)} does not exist",
                             "start `teamsvoice serve` once: the job engine creates its tables"))
    else:
        engine = create_blocking_engine(system_url)
        try:
            if "workflow_status" in inspect(engine).get_table_names(schema=schema):
                with engine.connect() as connection:
                    table = "workflow_status" if schema is None else f"{schema}.workflow_status"
                    waiting = connection.scalar(text(f"SELECT COUNT(*) FROM {table} WHERE status IN ('ENQUEUED', 'PENDING')"))
                checks.append(_check("job engine tables", True, f"DBOS system tables present; {waiting} workflow(s) "
                                                                  f"queued or running"))
            else:
                checks.append(_check("job engine tables", False, "DBOS's system tables are missing",
                                     "start `teamsvoice serve` or `teamsvoice worker` once: the job engine creates them"))
        except SQLAlchemyError as exc:
            checks.append(_check("job engine tables", False, f"cannot read them: {str(getattr(exc, 'orig', exc)).splitlines()[0]}",
                                 "check the job engine's database"))
        finally:
            engine.dispose()
    engine = create_blocking_engine(settings.effective_database_url)
    try:
        with sync_transaction(engine) as session:
            live = jobs_repository.live_workers(
                session, beating_since=utcnow() - timedelta(seconds=settings.job_executor_timeout_seconds))
    except SQLAlchemyError as exc:
        live = []
        checks.append(_check("job executors", False, f"cannot read job_executors: {str(getattr(exc, 'orig', exc)).splitlines()[0]}",
                             "run `teamsvoice migrate`"))
        return checks
    finally:
        engine.dispose()
    checks.append(_check("job executors", bool(live),
                         ", ".join(f"{e.role} pid {e.pid} on {e.hostname}" for e in live) + " alive" if live else
                         f"no process has beaten in the last {settings.job_executor_timeout_seconds:g} s: queued jobs wait",
                         "start `teamsvoice serve` (SQLite) or one or more `teamsvoice worker` (PostgreSQL)"))
    return checks


def _doctor_pwsh(settings: "Settings") -> list[dict[str, Any]]:
    """Cloud mode's Teams PowerShell on this host (pwsh, the app id, a certificate), as `serve`, `api` and `worker`
    check it at their start. Local: it runs with --offline too."""
    from teamsvoice.microsoft.pwsh import PwshConfig, PwshUnavailable

    if settings.microsoft_mode != "cloud":
        return []
    try:
        config = PwshConfig.of_settings(settings)
    except PwshUnavailable as exc:
        return [_check("teams powershell", False, exc.message,
                       "install PowerShell 7 and the MicrosoftTeams module on this host and set the TEAMSVOICE_MICROSOFT_* "
                       "settings as the server has them (README, Pointing at Microsoft's cloud)")]
    return [_check("teams powershell", True, f"{config.executable}; app {config.application_id}, certificate "
                   f"{config.certificate_path or 'thumbprint ' + str(config.certificate_thumbprint)}")]


async def _doctor_microsoft(settings: "Settings") -> list[dict[str, Any]]:
    from sqlalchemy import select

    from teamsvoice.core.db import create_engine, session_factory, transaction
    from teamsvoice.core.errors import DomainError
    from teamsvoice.domain.consent.repository import consents_of
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.microsoft.identity import GRAPH_RESOURCE, TEAMS_ADMIN_RESOURCE, MicrosoftIdentity

    engine = create_engine(settings.effective_database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            linked = [(e.id, e.enterprise_name, e.tenant_id, [c.consent_name for c in await consents_of(session, e.id)])
                      for e in await session.scalars(select(Enterprise).where(Enterprise.tenant_id.is_not(None))
                                                     .order_by(Enterprise.id))]
    finally:
        await engine.dispose()
    if not linked:
        return [_check("microsoft", True, "no customer tenant is linked yet")]
    if not settings.microsoft_client_id and settings.microsoft_mode == "emulator":
        return [_check("microsoft", None, f"{len(linked)} linked tenant(s) in the embedded emulator, whose address "
                       "`teamsvoice serve` records in this data directory at each start (it has not here): start it, "
                       "or set TEAMSVOICE_MICROSOFT_LOGIN_URL, _GRAPH_URL, _POWERSHELL_URL, _CA_BUNDLE, _CLIENT_ID and "
                       "_CLIENT_SECRET as it has them to check them")]
    if not settings.microsoft_client_id:
        return [_check("microsoft", False, f"{len(linked)} linked tenant(s), but no app registration is configured",
                       "set TEAMSVOICE_MICROSOFT_CLIENT_ID and TEAMSVOICE_MICROSOFT_CLIENT_SECRET (or the certificate) "
                       "as the server has them")]
    checks = []
    # The tokens only: the identity as the connector builds it. The connector itself would also resolve cloud mode's
    # pwsh, which `_doctor_pwsh` reports (its PwshUnavailable was a traceback here once a tenant was linked).
    identity = MicrosoftIdentity(login_url=settings.microsoft_login_url, client_id=settings.microsoft_client_id,
                                 client_secret=settings.microsoft_client_secret, ca_bundle=settings.microsoft_ca_bundle)
    try:
        for enterprise_id, name, tenant_id, consents in linked:
            missing = []
            for resource, label in ((GRAPH_RESOURCE, "Microsoft Graph"), (TEAMS_ADMIN_RESOURCE, "Teams admin")):
                try:
                    await identity.app_token(tenant_id, resource)
                except DomainError as exc:
                    missing.append(f"{label}: {exc.message}")
            recorded = f"recorded consents: {', '.join(consents) or 'none'}"
            checks.append(_check(f"tenant {tenant_id} (enterprise {enterprise_id}, {name})", not missing,
                                 "; ".join(missing) + f"; {recorded}" if missing else f"app-only tokens granted; {recorded}",
                                 "check that Microsoft is reachable from here; if it answers, the tenant's Global "
                                 "Administrator must consent again (send the consent link from the console's Customers "
                                 "page or the REGISTRATION action URL)"))
    finally:
        identity.close()
    return checks



def doctor(data_dir: DataDir = None, as_json: Json = False,
           offline: Annotated[bool, typer.Option("--offline", help="Skip the Microsoft checks.")] = False) -> None:
    """Check the deployment: data directory permissions, database reachable, migrations at head, cloud mode's
    Teams PowerShell on this host, job engine (DBOS tables, live executors), and for each linked customer tenant
    that Microsoft answers and grants our app's tokens (its consent). Prints what to fix for each failed check;
    exit 1 when one fails."""
    settings = embedded_microsoft(_settings(data_dir))
    checks = _doctor_storage(settings)
    database, at_head = _doctor_database(settings)
    checks += database + _doctor_pwsh(settings)
    if at_head:
        checks += _doctor_jobs(settings)
        checks += [_check("microsoft", None, "skipped (--offline)")] if offline else asyncio.run(_doctor_microsoft(settings))
    else:
        checks += [_check(name, None, "skipped: the database is not usable yet") for name in ("job engine", "microsoft")]
    failed = [c for c in checks if c["status"] == "failed"]
    if as_json:
        typer.echo(json.dumps({"ok": not failed, "checks": checks}, indent=2))
    else:
        for c in checks:
            mark = {"ok": "ok  ", "failed": "FAIL", "skipped": "skip"}[c["status"]]
            typer.echo(f"[{mark}] {c['check']}: {c['detail']}")
            if "fix" in c:
                typer.echo(f"       fix: {c['fix']}")
        typer.echo(f"{len(failed)} check(s) failed" if failed else "all checks passed")
    if failed:
        raise typer.Exit(1)


# --- backup and restore ---------------------------------------------------------------------------------

BACKUP_FORMAT = "teamsvoice-backup"
DATABASE_FILE, JOBS_FILE, KEY_FILE = "teamsvoice.sqlite3", "teamsvoice-jobs.sqlite3", "secret.key"
# What else makes the embedded default whole, so that a backup restored into an empty directory serves: the demo
# credentials and the app registration `serve` wrote (it refused to start without them), and the Microsoft 365
# emulator's directory (its tenants, which the database's customers are linked to, and its TLS files).
SIDE_FILES = ("demo-credentials.json", "microsoft-app.json")
EMULATOR_DIR = "m365-emulator"


def _emulator_files(data_dir: Path) -> list[Path]:
    """The emulator directory's own files (not SQLite's -wal/-shm, nor files a restore set aside)."""
    directory = data_dir / EMULATOR_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.is_symlink()
                  and not p.name.endswith(("-wal", "-shm")) and ".before-restore-" not in p.name)


def _is_side_member(name: str) -> bool:
    """A side file's name in an archive: one of SIDE_FILES, or a plain file name in the emulator's directory."""
    if name in SIDE_FILES:
        return True
    folder, _, leaf = name.partition("/")
    return folder == EMULATOR_DIR and bool(leaf) and "/" not in leaf and leaf not in (".", "..") \
        and not leaf.endswith(("-wal", "-shm"))


def _embedded_only(settings: "Settings", command: str) -> None:
    if not settings.is_sqlite:
        _fail(f"`teamsvoice {command}` covers the embedded SQLite default; this deployment uses PostgreSQL: use "
              f"{'pg_dump -Fc' if command == 'backup' else 'pg_restore'} on TEAMSVOICE_DATABASE_URL's database instead "
              f"(the job engine's tables are in its dbos schema, so one dump holds both)")


def _online_copy(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy while a running server keeps writing."""
    import sqlite3

    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _revisions(path: Path) -> set[str]:
    """The Alembic revisions a SQLite file is at; ValueError when it is not a teamsvoice database."""
    import sqlite3

    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"alembic_version", "enterprises"} <= tables:
                raise ValueError("it holds no teamsvoice tables")
            return {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"not a SQLite database ({exc})") from None


def backup(file: Annotated[Path, typer.Argument(help="The archive to write (a .tar file).")],
           data_dir: DataDir = None, as_json: Json = False) -> None:
    """Copy the embedded default (SQLite database, the job engine's database and the secret key that encrypts
    stored secrets) into one archive, safely while `teamsvoice serve` runs. Keep the archive as secret as the
    data directory. On PostgreSQL, use pg_dump."""
    import io
    import os
    import tarfile
    import tempfile

    from teamsvoice import __version__
    from teamsvoice.core.clock import utcnow
    from teamsvoice.jobs.runtime import system_database_url

    settings = _settings(data_dir)
    _embedded_only(settings, "backup")
    database = _sqlite_path(settings.effective_database_url)
    sources = {DATABASE_FILE: database, JOBS_FILE: _sqlite_path(system_database_url(settings))}
    # The archive (and its .partial beside it) replaces what is at FILE: never the data directory's files, by any
    # path or symbolic link (`backup data/teamsvoice.sqlite3` replaced the live database with the archive).
    target = file.resolve()
    if target.is_relative_to(settings.data_dir) or target in {p.resolve() for p in sources.values()}:
        _fail(f"{file} is inside the data directory {settings.data_dir} (or is its database): write the backup "
              f"elsewhere, it would replace the server's files")
    if not database.exists():
        _fail(f"there is no database to back up at {database}")
    with tempfile.TemporaryDirectory(dir=settings.data_dir) as scratch:
        copies: dict[str, Path] = {}
        for name, source in sources.items():
            if source.exists():
                copies[name] = Path(scratch) / name
                _online_copy(source, copies[name])
        side: dict[str, Path] = {name: settings.data_dir / name for name in SIDE_FILES
                                 if (settings.data_dir / name).is_file()}
        for path in _emulator_files(settings.data_dir):
            name = f"{EMULATOR_DIR}/{path.name}"
            if path.suffix == ".sqlite3":  # the emulator's database, written while it runs: copied as ours are
                (Path(scratch) / EMULATOR_DIR).mkdir(exist_ok=True)
                side[name] = Path(scratch) / name
                _online_copy(path, side[name])
            else:
                side[name] = path
        try:
            revisions = sorted(_revisions(copies[DATABASE_FILE]))
        except ValueError as exc:
            _fail(f"{database} is not a teamsvoice database: {exc}")
            raise
        key = settings.data_dir / KEY_FILE
        manifest = {"format": BACKUP_FORMAT, "version": 1, "teamsvoice": __version__,
                    "createdAt": utcnow().isoformat() + "Z", "revisions": revisions, "files": sorted(copies),
                    "sideFiles": sorted(side),
                    "secretKey": "configured" if settings.secret_key else ("file" if key.exists() else "none")}
        partial = file.with_name(file.name + ".partial")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as archive:
                body = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size, info.mode = len(body), 0o600
                archive.addfile(info, io.BytesIO(body))
                for name, copy in copies.items():
                    archive.add(copy, arcname=name)
                if manifest["secretKey"] == "file":
                    archive.add(key, arcname=KEY_FILE)
                for name, path in side.items():
                    archive.add(path, arcname=name)
            os.replace(partial, file)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            _fail(f"cannot write {file}: {exc.strerror}")
    if as_json:
        typer.echo(json.dumps({"file": str(file)} | manifest, indent=2))
    else:
        typer.echo(f"backed up {', '.join(manifest['files'] + manifest['sideFiles'])} (migration {', '.join(revisions)}) to {file}"
                   + ("" if manifest["secretKey"] != "configured" else
                      "; the secret key is TEAMSVOICE_SECRET_KEY: keep it with the archive"))


def restore(file: Annotated[Path, typer.Argument(help="An archive written by `teamsvoice backup`.")],
            data_dir: DataDir = None, as_json: Json = False) -> None:
    """Replace the embedded default's databases (and secret key) with a backup's. Refused while a server holds
    the data directory, and for an archive that is not a teamsvoice backup or whose database is newer than
    this teamsvoice. The files it replaces are kept beside them as *.before-restore-TIMESTAMP. On PostgreSQL, use
    pg_restore."""
    import tarfile
    import tempfile

    from alembic.script import ScriptDirectory

    from teamsvoice import runner
    from teamsvoice.core.clock import utcnow
    from teamsvoice.core.db import MIGRATIONS_DIR
    from teamsvoice.jobs.runtime import system_database_url

    settings = _settings(data_dir)
    _embedded_only(settings, "restore")
    lock = runner.DataDirLock(settings.data_dir)
    try:
        runner.check_data_dir(settings.data_dir)
        lock.acquire(f"teamsvoice restore of {file}")
    except runner.StartupError as exc:
        _fail(f"cannot restore: {exc}")
    try:
        with tempfile.TemporaryDirectory(dir=settings.data_dir) as scratch:
            try:
                with tarfile.open(file, mode="r:*") as archive:
                    names = set(archive.getnames())
                    if "manifest.json" not in names:
                        raise ValueError("it has no manifest.json")
                    manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
                    # (a container image's, of `docker save`, is a list)
                    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
                        raise ValueError("its manifest is not a teamsvoice backup's")
                    wanted = [n for n in (DATABASE_FILE, JOBS_FILE, KEY_FILE) if n in names]
                    if DATABASE_FILE not in wanted:
                        raise ValueError(f"it holds no {DATABASE_FILE}")
                    side = sorted(n for n in names if _is_side_member(n))
                    for name in wanted + side:
                        member = archive.getmember(name)
                        if not member.isfile():
                            raise ValueError(f"{name} in it is not a file")
                        archive.extract(member, scratch, filter="data")
            except FileNotFoundError:
                _fail(f"{file} does not exist")
            except tarfile.TarError:
                _fail(f"{file} is not a teamsvoice backup: not a tar archive")
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                _fail(f"{file} is not a teamsvoice backup: {str(exc).splitlines()[0]}")
            try:
                revisions = _revisions(Path(scratch) / DATABASE_FILE)
            except ValueError as exc:
                _fail(f"{file} does not hold a teamsvoice database: {exc}")
                raise
            known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}
            if not revisions or revisions - known:
                _fail(f"{file} holds a database at migration {', '.join(sorted(revisions - known)) or 'none'}, which this "
                      f"teamsvoice does not know: restore it with the release that wrote it (or a newer one)")
            targets = {DATABASE_FILE: _sqlite_path(settings.effective_database_url),
                       JOBS_FILE: _sqlite_path(system_database_url(settings)), KEY_FILE: settings.data_dir / KEY_FILE}
            targets |= {name: settings.data_dir / name for name in side}
            wanted += side
            stamp = utcnow().strftime("%Y%m%dT%H%M%S")
            kept = []
            for name, target in targets.items():
                if name == KEY_FILE and name not in wanted:
                    continue
                for path in (target, target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
                    if path.exists():
                        path.rename(path.with_name(f"{path.name}.before-restore-{stamp}"))
                        kept.append(path.name)
                if name in wanted:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    (Path(scratch) / name).replace(target)
                    if name == KEY_FILE or name in SIDE_FILES or target.suffix in (".key", ".sqlite3"):
                        target.chmod(0o600)
    finally:
        lock.release()
    heads = set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
    report = {"file": str(file), "restored": wanted, "revisions": sorted(revisions), "atHead": revisions == heads,
              "kept": kept, "createdAt": manifest.get("createdAt")}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"restored {', '.join(wanted)} from {file} (backup of {manifest.get('createdAt')})"
                   + ("" if report["atHead"] else "; `teamsvoice serve` (or `migrate`) brings it to this release's migrations"))
