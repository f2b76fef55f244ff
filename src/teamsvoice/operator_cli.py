"""Operator commands without a browser: `tenants list`, `jobs list|show|cancel`, `bulk import`.

They talk to the database directly (the settings of `--data-dir` and TEAMSVOICE_* variables, as `serve`,
`api` and `worker` do), with an operator's reach: every customer of the deployment. `bulk import` records the
job like the console and the Fusion API do and hands it to the job engine (as an `api` process: the job runs
in `serve` or a `worker`); with `--dry-run` it only checks the rows. `--json` prints machine-readable output.
Heavy modules are imported inside the commands, so `teamsvoice --help` stays instant.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from teamsvoice.settings import Settings

T = TypeVar("T")
DataDir = Annotated[Path, typer.Option(help="Where SQLite files, keys and demo credentials live.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]

tenants_app = typer.Typer(help="Customers (Fusion tenants and ConnecttoTeams enterprises).", no_args_is_help=True)
jobs_app = typer.Typer(help="Bulk jobs: list, watch, cancel.", no_args_is_help=True)
bulk_app = typer.Typer(help="Bulk updates of Teams users from a CSV file.", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"teamsvoice: {message}", err=True)
    raise typer.Exit(code)


def _settings(data_dir: Path) -> "Settings":
    from pydantic import ValidationError

    from teamsvoice.settings import Settings

    try:
        return Settings(data_dir=data_dir.resolve())
    except ValidationError as exc:
        error = exc.errors()[0]
        _fail(f"setting TEAMSVOICE_{str(error['loc'][0]).upper()} is invalid: {error['msg']}")
        raise


def _with_session(settings: "Settings", work: Callable[["AsyncSession"], Awaitable[T]]) -> T:
    from teamsvoice.core.db import create_engine, session_factory
    from teamsvoice.core.errors import DomainError

    async def run() -> T:
        engine = create_engine(settings.effective_database_url)
        try:
            async with session_factory(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        _fail(exc.message)
        raise


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)


# --- tenants --------------------------------------------------------------------------------------------


async def customers(session: "AsyncSession") -> list[dict[str, Any]]:
    """Every enterprise with its onboarding state; the Fusion tenant and subscription it backs, if any."""
    from sqlalchemy import select

    from teamsvoice.domain.consent.service import consents_of
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
def tenants_list(data_dir: DataDir = Path("data"), as_json: Json = False) -> None:
    """Every customer with its onboarding state, MS tenant, consents and number counts."""
    rows = _with_session(_settings(data_dir), customers)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(["enterprise", "customer", "reseller", "subscription", "onboarding", "MS tenant", "numbers free/assigned",
            "consents"],
           [[r["enterpriseId"], r.get("fusionTenant") or r["name"], r["reseller"], r.get("subscriptionId"), r["onboarding"],
             r["msTenantId"], f"{r['numbers']['free']}/{r['numbers']['assigned']}" if "numbers" in r else "",
             ", ".join(r["consents"])] for r in rows])


# --- jobs -----------------------------------------------------------------------------------------------


async def _jobs(session: "AsyncSession", status: str | None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
    from teamsvoice.domain.teams_users import bulk
    from teamsvoice.domain.teams_users.models import FusionBulkJob

    query = select(FusionBulkJob, FusionSubscription, FusionTenant).join(
        FusionSubscription, FusionSubscription.id == FusionBulkJob.subscription_id).join(
        FusionTenant, FusionTenant.id == FusionSubscription.fusion_tenant_id).order_by(FusionBulkJob.id.desc())
    if status:
        query = query.where(FusionBulkJob.status == status)
    return [bulk.job_summary(job) | {"tenant": tenant.name, "subscriptionId": subscription.id}
            for job, subscription, tenant in (await session.execute(query.limit(500))).all()]


async def _job(session: "AsyncSession", job_id: int) -> Any:
    from teamsvoice.core.errors import NotFound
    from teamsvoice.domain.teams_users.models import FusionBulkJob

    job = await session.get(FusionBulkJob, job_id)
    if job is None:
        raise NotFound(f"Bulk job {job_id} not found")
    return job


@jobs_app.command("list")
def jobs_list(data_dir: DataDir = Path("data"), as_json: Json = False,
              status: Annotated[str | None, typer.Option(help="Only jobs in this status (queued, running, success, "
                                                                "partial, error, cancelled).")] = None) -> None:
    """Bulk jobs of every customer, newest first, with their progress."""
    rows = _with_session(_settings(data_dir), lambda s: _jobs(s, status))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(["id", "customer", "title", "status", "done", "errors", "created"],
           [[r["id"], r["tenant"], r["title"], r["status"], f"{r['processed_count']}/{r['total_count']}",
             r["error_count"], r["created_on"][:19]] for r in rows])


async def _details(session: "AsyncSession", job_id: int) -> dict[str, Any]:
    from sqlalchemy import select

    from teamsvoice.domain.teams_users import bulk
    from teamsvoice.domain.teams_users.models import FusionBulkItem

    job = await _job(session, job_id)
    items = await session.scalars(select(FusionBulkItem).where(FusionBulkItem.job_id == job_id).order_by(FusionBulkItem.position))
    return bulk.job_summary(job) | {"job_items": [bulk.render_item(i) for i in items]}


def _watch(settings: "Settings", job_id: int, as_json: bool) -> dict[str, Any]:
    """Polls the job until it ends, with a progress bar (none with --json)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from teamsvoice.domain.teams_users.bulk import FINAL

    summary = _with_session(settings, lambda s: _details(s, job_id))
    if as_json:
        while summary["status"] not in FINAL:
            time.sleep(0.5)
            summary = _with_session(settings, lambda s: _details(s, job_id))
        return summary
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task(f"job {job_id} {summary['status']}", total=summary["total_count"])
        while True:
            bar.update(task, completed=summary["processed_count"], description=f"job {job_id} {summary['status']}")
            if summary["status"] in FINAL:
                return summary
            time.sleep(0.5)
            summary = _with_session(settings, lambda s: _details(s, job_id))


def _print_details(details: dict[str, Any]) -> None:
    typer.echo(f"job {details['id']} '{details['title']}': {details['status']}, {details['processed_count']}/"
               f"{details['total_count']} done, {details['success_count']} succeeded, {details['error_count']} failed")
    _table(["user", "status", "attempts", "error"],
           [[i["upn"], i["status"], i["attempts"], (i.get("error") or {}).get("reason", "")] for i in details["job_items"]])


@jobs_app.command("show")
def jobs_show(job_id: Annotated[int, typer.Argument(help="The bulk job's id.")], data_dir: DataDir = Path("data"),
              as_json: Json = False,
              watch: Annotated[bool, typer.Option("--watch", help="Follow the job with a progress bar until it ends.")] = False) -> None:
    """One bulk job: progress, and each item with its attempts and last error."""
    settings = _settings(data_dir)
    details = _watch(settings, job_id, as_json) if watch else _with_session(settings, lambda s: _details(s, job_id))
    if as_json:
        typer.echo(json.dumps(details, indent=2))
    else:
        _print_details(details)


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[int, typer.Argument(help="The bulk job's id.")], data_dir: DataDir = Path("data"),
                as_json: Json = False) -> None:
    """No item of the job starts after this; finished items stay as they are."""
    from teamsvoice.domain.teams_users import bulk

    async def cancel(session: "AsyncSession") -> dict[str, Any]:
        job = await _job(session, job_id)
        await bulk.cancel_job(session, job)
        return bulk.job_summary(job)

    summary = _with_session(_settings(data_dir), cancel)
    typer.echo(json.dumps(summary, indent=2) if as_json else f"job {job_id} cancelled "
               f"({summary['processed_count']}/{summary['total_count']} had finished)")


# --- bulk import ----------------------------------------------------------------------------------------


@bulk_app.command("import")
def bulk_import(
    file: Annotated[Path, typer.Argument(help="CSV: upn,number,vrp,country,displayName,groups,licenses (see README).")],
    subscription: Annotated[int, typer.Option(help="The Fusion subscription id (teamsvoice tenants list).")],
    data_dir: DataDir = Path("data"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only check the rows; change nothing.")] = False,
    name: Annotated[str, typer.Option(help="The job's name.")] = "CLI CSV import",
    results: Annotated[Path | None, typer.Option(help="Write the per-row results here (CSV).")] = None,
    as_json: Json = False,
) -> None:
    """Check the rows (each error named with its line), then run them as one bulk job and follow it to the end.
    Exit 1 when a row is refused or an item fails."""
    import csv

    from teamsvoice.console.bulk_csv import preview_rows
    from teamsvoice.domain.teams_users import bulk

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
        raise
    settings = _settings(data_dir)

    async def check(session: "AsyncSession") -> list[dict[str, Any]]:
        return await preview_rows(session, await bulk.load_access(session, subscription), text)

    rows = _with_session(settings, check)
    refused = [r for r in rows if r["errors"]]
    if dry_run or refused:
        report = {"dryRun": dry_run, "rows": len(rows), "valid": len(rows) - len(refused),
                  "errors": [{"line": r["line"], "upn": r["upn"], "errors": r["errors"]} for r in refused]}
        if results is not None:
            with results.open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["line", "upn", "status", "error"])
                for r in rows:
                    writer.writerow([r["line"], r["upn"], "error" if r["errors"] else "ok", "; ".join(r["errors"])])
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            for r in refused:
                typer.echo(f"line {r['line']} ({r['upn'] or 'no upn'}): {'; '.join(r['errors'])}")
            typer.echo(f"{report['valid']} of {len(rows)} rows are valid" + ("" if dry_run else "; nothing was run"))
        if refused:
            raise typer.Exit(1)
        return
    summary = _run_bulk(settings, subscription, name, [r["item"] for r in rows], as_json)
    if results is not None:
        with results.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["upn", "status", "attempts", "error"])
            for item in summary["job_items"]:
                writer.writerow([item["upn"], item["status"], item["attempts"], (item.get("error") or {}).get("reason", "")])
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_details(summary)
    if summary["error_count"]:
        raise typer.Exit(1)


def _run_bulk(settings: "Settings", subscription: int, name: str, items: list[dict[str, Any]], as_json: bool) -> dict[str, Any]:
    """Records the job, enqueues it as an `api` process would (the job engine of `serve` or a worker runs it),
    and follows it to the end."""
    import anyio

    from teamsvoice.core.security import Keyring, load_or_create_master_key
    from teamsvoice.domain.teams_users import bulk, workflows
    from teamsvoice.jobs.runtime import start_jobs, stop_jobs

    async def create(session: "AsyncSession") -> tuple[str, int]:
        job = await bulk.create_job(session, await bulk.load_access(session, subscription), {"name": name, "data": items})
        return job.job_key, job.id

    job_key, job_id = _with_session(settings, create)
    start_jobs(settings, Keyring(load_or_create_master_key(settings.secret_key, settings.data_dir)), role="api")
    try:
        anyio.run(workflows.enqueue_bulk, job_key, job_id)
    finally:
        stop_jobs()
    if not as_json:
        typer.echo(f"bulk job {job_id} queued ({len(items)} users); it runs in `teamsvoice serve` or a worker")
    return _watch(settings, job_id, as_json)
