"""What the API layer costs on top of the database read it does (prints figures; not a test). See
bench/README.md.

    .venv/bin/python bench/api_overhead.py [--requests 400] [--backends sqlite,postgresql] [--url postgresql://...]

Builds the app on a fresh SQLite file, then on an empty PostgreSQL database (one it starts as the test suite
does, or --url), with the demo organisation (no job engine, no Microsoft), and on each, for
three list/get routes of each family times --requests sequential calls in process (httpx over ASGI, so no
network), alternated with a bare Starlette handler that does the same database read and renders the same rows
as JSON, and with the same bare handler resolving the bearer token first (with the product's own function: the
check every request must make). Ratios are teamsvoice's median latency over each bare one's; the issue's
target is 1.5x over the bare read. The teamsvoice figure includes what a real request costs: the bearer token's
lookup and scope, the middleware stack (request id and access log, security headers, limits, metrics) and the
vendor rendering (with the product's default settings, so a token verified once is kept for
TEAMSVOICE_CREDENTIAL_CACHE_SECONDS: core/credential_cache.py). It also prints the SQL statements each request
sent, and the backends side by side.
"""

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, select
from sqlalchemy.orm import joinedload
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.postgres

from teamsvoice import demo  # noqa: E402
from teamsvoice.app import create_app  # noqa: E402
from teamsvoice.core.db import create_engine, session_factory, upgrade_database  # noqa: E402
from teamsvoice.core.security import Keyring, load_or_create_master_key  # noqa: E402
from teamsvoice.domain.fusion.auth import principal_for_access_token  # noqa: E402
from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant  # noqa: E402
from teamsvoice.domain.fusion.scope import DRAAS_INSTANCE, org_uuid  # noqa: E402
from teamsvoice.domain.orgs.auth import principal_for_token  # noqa: E402
from teamsvoice.domain.orgs.models import Enterprise, Reseller, SbcGateway  # noqa: E402
from teamsvoice.settings import Settings  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

BASE = "/api/v01/draas/{draas}"


async def timed(targets: list[tuple[httpx.AsyncClient, str, dict[str, str]]], count: int,
                statements: list[int]) -> list[tuple[float, float]]:
    """Median latency and SQL statements per request of each target (client, path, headers), their requests
    alternated so that all see the same machine (a shared machine's load moves between runs)."""
    for client, url, sent in targets:  # warm up, and check it works
        assert (await client.get(url, headers=sent)).status_code == 200, url
    samples: list[list[float]] = [[] for _ in targets]
    sql: list[list[int]] = [[] for _ in targets]
    for _ in range(count):
        for index, (client, url, sent) in enumerate(targets):
            before = statements[0]
            started = time.perf_counter()
            response = await client.get(url, headers=sent)
            samples[index].append(time.perf_counter() - started)
            sql[index].append(statements[0] - before)
            assert response.status_code == 200
    return [(statistics.median(times), statistics.mean(sent_sql)) for times, sent_sql in zip(samples, sql)]


def bare_app(sessions: Any, keyring: Keyring, visible: list[int]) -> Starlette:
    """The same reads, straight from a Starlette handler; under /auth the handler first resolves the bearer
    token with the product's own function (the credential check every teamsvoice request must make)."""
    def route(path: str, read: Callable[[Any, Request], Awaitable[Any]]) -> list[Route]:
        async def handler(request: Request) -> JSONResponse:
            async with sessions() as session:
                return JSONResponse(await read(session, request))

        async def authenticated(request: Request) -> JSONResponse:
            token = request.headers["Authorization"].removeprefix("Bearer ")
            async with sessions() as session:
                if path.startswith("/tenants"):
                    await principal_for_access_token(session, keyring, token)
                else:
                    await principal_for_token(session, token)
                return JSONResponse(await read(session, request))

        return [Route(path, handler), Route(f"/auth{path}", authenticated)]

    async def resellers(session: Any, request: Request) -> Any:
        rows = await session.scalars(select(Reseller).where(Reseller.parent_id == int(request.path_params["id"])))
        return [{"resellerId": r.id, "name": r.name} for r in rows]

    async def enterprises(session: Any, request: Request) -> Any:
        rows = await session.scalars(select(Enterprise).where(Enterprise.reseller_id == int(request.path_params["id"])))
        return [{"enterpriseId": e.id, "enterpriseName": e.enterprise_name} for e in rows]

    async def gateways(session: Any, request: Request) -> Any:
        rows = await session.scalars(select(SbcGateway))
        return [{"id": g.id, "region": g.region, "fqdn": g.fqdn} for g in rows]

    # A Fusion tenant's answer names its owner node, and the list its total: the routes read both in their one
    # statement (the owner joined, the total as a window count), so the bare handlers read them so too, among
    # the tenants the login sees (`visible`: its nodes).
    def tenant_body(t: FusionTenant) -> dict[str, Any]:
        return {"uuid": t.uuid, "name": t.name, "billingId": t.billing_id, "markup": t.markup,
                "owner": {"type": t.owner.level, "uuid": org_uuid(t.owner.id), "name": t.owner.name}}

    def tenants_seen() -> Any:
        return select(FusionTenant).options(joinedload(FusionTenant.owner)).where(
            FusionTenant.owner_reseller_id.in_(visible))

    async def tenants(session: Any, request: Request) -> Any:
        rows = (await session.execute(tenants_seen().add_columns(func.count().over())
                                      .order_by(FusionTenant.name, FusionTenant.id).offset(0).limit(10))).all()
        return {"tenants": [tenant_body(t) for t, _ in rows], "total": rows[0][1] if rows else 0}

    async def tenant(session: Any, request: Request) -> Any:
        return tenant_body(await session.scalar(tenants_seen().where(FusionTenant.uuid == request.path_params["uuid"])))

    async def subscriptions(session: Any, request: Request) -> Any:
        row = await session.scalar(tenants_seen().where(FusionTenant.uuid == request.path_params["uuid"]))
        subs = await session.scalars(select(FusionSubscription).where(FusionSubscription.fusion_tenant_id == row.id))
        return {"subscriptions": [{"id": s.id, "name": s.name} for s in subs]}

    return Starlette(routes=[*route("/resellers/{id}", resellers), *route("/enterprises/{id}", enterprises),
                             *route("/gateways", gateways), *route("/tenants", tenants), *route("/tenants/{uuid}", tenant),
                             *route("/tenants/{uuid}/subscriptions", subscriptions)])


Row = tuple[str, list[tuple[float, float]]]


async def measure(data_dir: Path, database_url: str | None, count: int) -> list[Row]:
    """The six routes on one database (a new SQLite file, or an empty PostgreSQL database), each alternated with
    the bare handler's two variants: per route, (median seconds, SQL statements) of teamsvoice, bare, bare+auth."""
    settings = Settings(data_dir=data_dir, public_url="http://127.0.0.1:8080", database_url=database_url)
    upgrade_database(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    keyring = Keyring(load_or_create_master_key(settings.secret_key, settings.data_dir))
    async with sessions() as session:
        organisation = await demo.seed_organisation(session)
        assert organisation is not None
        admin = {"username": "admin@adatum.example", "password": "x", "id": "0"}
        seed = await demo.seed_fusion(session, keyring, organisation,
                                      [{"domain": "adatum.example", "tenantId": "bench", "globalAdmin": admin}])
        await session.commit()
    app = create_app(settings, jobs_role=None)
    statements = [0]  # SQL statements sent by this process (both apps use the same database)

    def counted(*_: Any) -> None:
        statements[0] += 1

    for sent in (engine.sync_engine, app.state.container.engine.sync_engine):
        event.listen(sent, "before_cursor_execute", counted)
    reseller = organisation.resellers[1]
    master = organisation.master
    rows: list[Row] = []
    visible: list[int] = []  # the Fusion login's nodes, once it has signed in
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as api, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=bare_app(sessions, keyring, visible)), base_url="http://127.0.0.1") as bare:
        token = (await api.post("/oauth/token", auth=(master.client_id, master.client_secret), data={
            "grant_type": "password", "username": master.username, "password": master.password})).json()["access_token"]
        ctt = {"Authorization": f"Bearer {token}"}
        login = next(x for x in seed.logins if x["level"] == "reseller")
        fusion_token = (await api.post("/api/v01/auth/login", json={"username": login["username"],
                                                                    "password": login["password"]})).json()["access_token"]
        fusion = {"Authorization": f"Bearer {fusion_token}"}
        async with sessions() as session:
            visible.extend(sorted((await principal_for_access_token(session, keyring, fusion_token)).reseller_scope))
        draas = BASE.format(draas=DRAAS_INSTANCE)
        uuid = seed.subscriptions[0]["tenantUuid"]
        pairs = [
            ("CTT  GET /reseller/getResellers/{id}", f"/reseller/getResellers/{master.reseller_id}", ctt, f"/resellers/{master.reseller_id}"),
            ("CTT  GET /reseller/getEnterprisesForReseller/{id}", f"/reseller/getEnterprisesForReseller/{reseller.reseller_id}", ctt,
             f"/enterprises/{reseller.reseller_id}"),
            ("CTT  GET /reseller/getAvailableSBCGatewayRegions...", f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{master.reseller_id}",
             ctt, "/gateways"),
            ("Fusion GET tenants", f"{draas}/tenants", fusion, "/tenants"),
            ("Fusion GET tenants/{uuid}", f"{draas}/tenants/{uuid}", fusion, f"/tenants/{uuid}"),
            ("Fusion GET tenants/{uuid}/subscriptions", f"{draas}/tenants/{uuid}/subscriptions", fusion, f"/tenants/{uuid}/subscriptions"),
        ]
        for name, path, headers, bare_path in pairs:
            rows.append((name, await timed([(api, path, headers), (bare, bare_path, {}), (bare, f"/auth{bare_path}", headers)],
                                           count, statements)))
    await app.state.container.aclose()
    await engine.dispose()
    return rows


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.INFO)  # the access log would time the terminal, not the API
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory(prefix="teamsvoice-overhead-") as tmp:
        for backend in args.backends.split(","):
            data_dir = Path(tmp) / backend
            if backend == "sqlite":
                results[backend] = await measure(data_dir, None, args.requests)
            elif args.url:
                results[backend] = await measure(data_dir, args.url, args.requests)
            else:  # a PostgreSQL of its own, as the test suite starts it
                server = PostgresServer()
                server.start()
                try:
                    results[backend] = await measure(data_dir, server.create_database("overhead"), args.requests)
                finally:
                    server.stop()
    print(f"API overhead: {args.requests} sequential requests per route, alternated with the bare handler's (without and "
          f"with the credential check), in process (ASGI); median ms; ratio = teamsvoice / bare; SQL statements per "
          f"request ours/bare/bare+auth; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    header = f"{'route':<52}"
    for backend in results:
        header += f" | {backend:<10} {'ours':>6} {'bare':>6} {'ratio':>5} {'+auth':>6} {'ratio':>5} {'SQL':>5}"
    print(header)
    names = [name for name, _ in next(iter(results.values()))]
    for index, name in enumerate(names):
        line = f"{name:<52}"
        for backend, rows in results.items():
            (ours, ours_sql), (bare_ms, bare_sql), (auth_ms, auth_sql) = rows[index][1]
            line += (f" | {'':<10} {ours * 1000:>6.2f} {bare_ms * 1000:>6.2f} {ours / bare_ms:>5.2f} {auth_ms * 1000:>6.2f} "
                     f"{ours / auth_ms:>5.2f} {ours_sql:.0f}/{bare_sql:.0f}/{auth_sql:.0f}")
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--url", help="an empty PostgreSQL database to use (default: start one, as the tests do)")
    asyncio.run(main(parser.parse_args()))
