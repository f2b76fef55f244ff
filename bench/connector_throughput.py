"""Connector throughput against the emulator with added latency and a throttle budget (prints figures;
not a test). See bench/README.md.

    .venv/bin/python bench/connector_throughput.py [--users 2000] [--naive-users 100] [--latency-ms 100]
        [--rate 200] [--burst 100] [--concurrency 32] [--microsoft]

Per user, three Microsoft effects, each on its cheapest path: a Direct Routing number (Graph's
numberAssignments/assignNumber, a long-running operation polled until it succeeds), a voice routing policy
(Graph's policy/userAssignments/assign, many users per call) and a Teams Phone licence (assignLicense
through $batch, 20 per call).
- connector: the production MicrosoftConnector, numbers for all users in parallel under its per-tenant
  concurrency limit, the policy for every user in one call per 1,000 users, licences in $batch; 429s
  retried honouring Retry-After;
- naive: one user at a time, one call per effect (the policy too), same connector code, on a subset of
  users, extrapolated linearly;
- bound: the budget's best case for the requests the effects need at the least (a number: its POST and
  one read of its operation; the policy: its id, then one call per 1,000 users; a licence: one $batch item,
  charged as one request), all sharing the per-(app, tenant) bucket (latency assumed fully hidden).
`--microsoft` replaces the latency and throttle with the emulator's Microsoft profile and limits (Graph
reads 150-400 ms, writes 200-600 ms, number operations 1-3 s; Teams 30 requests/s per tenant; directory
writes 3,000 per 2.5 min): the bound is then the Teams requests at 30/s.
"""

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import socket
import sys
import tempfile
import threading
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from m365_emulator.server import build_uvicorn_server  # noqa: E402
from m365_emulator.settings import EmulatorSettings  # noqa: E402
from m365_emulator.tls import ensure_tls_material  # noqa: E402
from teamsvoice.microsoft.connector import MicrosoftConnector  # noqa: E402
from teamsvoice.microsoft.ports import TenantConnection  # noqa: E402
from teamsvoice.microsoft.teams_voice import POLICY_ASSIGN_CHUNK  # noqa: E402
from teamsvoice.settings import Settings  # noqa: E402

PASSWORD = "Bench-Passw0rd!"
POLICY = "Bench-Policy"
REDIRECT_URI = "https://localhost:5001/auth/callback"


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action, self.fields = "", {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = a.get("action", "")
        elif tag == "input" and a.get("name") and a.get("type") != "submit":
            self.fields[a["name"]] = a.get("value", "")


def _submit(browser: httpx.Client, page: httpx.Response, **values: str) -> httpx.Response:
    form = _Forms()
    form.feed(page.text)
    return browser.post(urljoin(str(page.url), form.action), data={**form.fields, **values})


def prepare(url: str, ca: str, users: int) -> tuple[str, str, str]:
    """Seeds the tenant, registers the app and consents as the tenant's admin. Returns (tenant, app, secret)."""
    app_id, secret = str(uuid.uuid4()), f"secret-{uuid.uuid4()}"
    with httpx.Client(base_url=url, verify=ca, timeout=120) as admin:
        tenant = admin.post("/_admin/tenants", json={
            "displayName": "Bench", "domain": "bench.example", "userCount": users,
            "globalAdmin": {"username": "admin@bench.example", "password": PASSWORD},
            "licenses": [{"skuPartNumber": "ENTERPRISEPACK", "units": users + 10},
                         {"skuPartNumber": "MCOEV", "units": users + 10}],
        }).raise_for_status().json()["tenantId"]
        admin.post("/_admin/applications", json={
            "appId": app_id, "displayName": "bench", "clientSecret": secret, "redirectUris": [REDIRECT_URI],
            "delegatedPermissions": ["Directory.ReadWrite.All"],
            "applicationPermissions": ["User.ReadWrite.All", "Directory.ReadWrite.All", "Group.ReadWrite.All",
                                       "LicenseAssignment.ReadWrite.All", "TeamsUserConfiguration.Read.All",
                                       "TeamsTelephoneNumber.ReadWrite.All", "TeamsPolicyUserAssign.ReadWrite.All"],
        }).raise_for_status()
    authorize = httpx.URL(f"{url}/{tenant}/oauth2/v2.0/authorize", params={
        "client_id": app_id, "response_type": "code", "redirect_uri": REDIRECT_URI, "state": "b",
        "scope": "openid Directory.ReadWrite.All", "prompt": "admin_consent"})
    with httpx.Client(verify=ca, timeout=60) as browser:
        page = _submit(browser, browser.get(authorize), username="admin@bench.example", password=PASSWORD)
        if page.status_code == 200:
            page = _submit(browser, page, consent="accept")
        assert page.status_code == 302, page.text
    return tenant, app_id, secret


def set_faults(url: str, ca: str, **config: object) -> dict:
    with httpx.Client(base_url=url, verify=ca, timeout=30) as admin:
        return admin.put("/_admin/faults", json=config).raise_for_status().json()


def injected(url: str, ca: str) -> dict:
    with httpx.Client(base_url=url, verify=ca, timeout=30) as admin:
        return admin.get("/_admin/faults").raise_for_status().json()["injected"]


def number_for(index: int) -> str:
    return f"+1425{5000000 + index:07d}"


class Requests:
    """Counts what the connector sends, by the effect it serves."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def __call__(self, request: httpx.Request) -> None:
        path = request.url.path
        kind = ("number" if "/telephoneNumberManagement/" in path else "policy" if "/admin/teams/policy/" in path
                else "batch" if path.endswith("/$batch") else "cmdlet" if "/_powershell/" in path else "other")
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def reset(self) -> None:
        self.counts = {}


async def connector_run(connection: TenantConnection, users: list[tuple[str, str]], offset: int) -> None:
    """`users`: (object id, userPrincipalName)."""
    ids = [user_id for user_id, _ in users]

    async def policy() -> None:
        await connection.voice.grant_voice_routing_policy_to_many(ids, POLICY)

    async def licences() -> None:
        results = await connection.directory_admin.assign_licences_to_many([upn for _, upn in users], add=["MCOEV"])
        failed = [r for r in results if not r.ok]
        assert not failed, failed[:3]

    async def licence_then_numbers() -> None:
        # Microsoft gives a number only to a user licensed for Teams Phone: the licences ($batch) come first.
        await licences()
        await asyncio.gather(*(connection.voice.assign_number(user_id, number_for(offset + i))
                               for i, user_id in enumerate(ids)))

    await asyncio.gather(policy(), licence_then_numbers())


async def naive_run(connection: TenantConnection, users: list[tuple[str, str]], offset: int) -> None:
    for index, (user_id, upn) in enumerate(users):
        await connection.directory_admin.assign_licences(upn, add=["MCOEV"])  # before the number, as Microsoft wants
        await connection.voice.assign_number(user_id, number_for(offset + index))
        await connection.voice.grant_voice_routing_policy(user_id, POLICY)


def serve_emulator(data_dir: Path, ready: "multiprocessing.connection.Connection") -> None:
    """The emulator in its own process, so that it does not share a GIL with the connector being measured.
    Its listening socket gets TCP_NODELAY: without it every loopback response waits ~40 ms for a delayed
    ACK (uvicorn writes headers and body separately), which would swamp the 100 ms of injected latency."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    settings = EmulatorSettings(data_dir=data_dir, public_url=url)
    server = build_uvicorn_server(settings, "127.0.0.1", sock.getsockname()[1])
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    ready.send((url, str(ensure_tls_material(data_dir).ca_cert_path)))
    ready.recv()  # until the parent is done
    server.should_exit = True
    thread.join(timeout=10)


async def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="tv-bench-"))
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=serve_emulator, args=(data / "m365", child), daemon=True)
    process.start()
    url, ca = parent.recv()
    try:
        started = time.monotonic()
        tenant, app_id, secret = prepare(url, ca, args.users + args.naive_users)
        print(f"emulator {url}; seeded {args.users + args.naive_users} users in {time.monotonic() - started:.1f} s")
        settings = Settings(
            data_dir=data, microsoft_mode="emulator", microsoft_login_url=url, microsoft_graph_url=f"{url}/v1.0",
            microsoft_powershell_url=f"{url}/_powershell/invoke", microsoft_ca_bundle=ca,
            microsoft_client_id=app_id, microsoft_client_secret=secret,
            microsoft_tenant_concurrency=args.concurrency, microsoft_retry_max_attempts=50,
            microsoft_retry_max_wait_seconds=600,
        )
        connector = MicrosoftConnector(settings)
        sent = Requests()
        connector.http.event_hooks["request"].append(sent)
        connection = connector.connect(tenant)
        await connection.cmdlets.run("New-CsOnlineVoiceRoutingPolicy", {"Identity": POLICY})
        everyone = sorted([(u.id, u.user_principal_name) async for u in connection.directory_admin.users(page_size=999)
                           if not u.user_principal_name.startswith("admin@")], key=lambda u: u[1])
        measured, naive_users = everyone[:args.users], everyone[args.users:args.users + args.naive_users]
        if args.microsoft:
            budget = dict(profile="microsoft", limits="microsoft")
            described = "Microsoft profile and limits: Teams 30 requests/s per app+tenant, number operations 1-3 s"
        else:
            budget = dict(latencyMs=args.latency_ms, limits="off",
                          throttle={"requestsPerSecond": args.rate, "burst": args.burst, "costModel": "requests"})
            described = f"latency {args.latency_ms} ms, throttle {args.rate:g}/s burst {args.burst} per app+tenant"
        set_faults(url, ca, **budget)
        sent.reset()
        started = time.monotonic()
        await connector_run(connection, measured, 0)
        connector_seconds = time.monotonic() - started
        throttled = injected(url, ca)["throttled"]
        counts = dict(sent.counts)

        set_faults(url, ca, **budget)
        started = time.monotonic()
        await naive_run(connection, naive_users, args.users)
        naive_subset_seconds = time.monotonic() - started
        naive_seconds = naive_subset_seconds * args.users / max(1, len(naive_users))
        await connector.aclose()

        policy_calls = 1 + -(-args.users // POLICY_ASSIGN_CHUNK)  # getPolicyId, then one call per chunk
        teams_requests = 2 * args.users + policy_calls
        if args.microsoft:  # licences draw on the directory budget, far from its limit here
            least, rate, burst = teams_requests, 30.0, 30
        else:
            least, rate, burst = teams_requests + args.users, args.rate, args.burst
        bound_seconds = max(1, least - burst) / rate  # at least one request beyond the burst (small runs)
        effects = 3 * args.users
        polls = counts.get("number", 0) - args.users
        print(f"\n{args.users} users x (number + policy + licence) = {effects} Microsoft effects ({described})")
        print(f"  requests the connector sent: {sum(counts.values())} ({counts}); "
              f"{polls / args.users:.2f} operation reads per number")
        print(f"  budget bound (best possible, {least} requests) {bound_seconds:8.1f} s  {effects / bound_seconds:7.1f} effects/s")
        print(f"  connector (concurrency {args.concurrency:>3})      {connector_seconds:8.1f} s  "
              f"{effects / connector_seconds:7.1f} effects/s  ({throttled} requests throttled and retried)")
        print(f"  naive one-at-a-time loop       {naive_seconds:8.1f} s  {effects / naive_seconds:7.1f} effects/s  "
              f"(measured {len(naive_users)} users in {naive_subset_seconds:.1f} s, extrapolated linearly)")
        print(f"\n  connector reaches {bound_seconds / connector_seconds:6.1%} of the budget bound")
        print(f"  naive loop reaches {bound_seconds / naive_seconds:6.1%} of the budget bound")
        print(f"  connector is {naive_seconds / connector_seconds:6.1f}x faster than the naive loop")
    finally:
        parent.send("stop")
        process.join(timeout=15)


if __name__ == "__main__":
    from harness import end_children_on_exit  # bench/harness.py: what this script starts ends with it

    end_children_on_exit()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--naive-users", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="throttle refill, requests per second")
    parser.add_argument("--burst", type=int, default=100, help="throttle bucket size")
    parser.add_argument("--concurrency", type=int, default=32, help="TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY")
    parser.add_argument("--microsoft", action="store_true",
                        help="the emulator's Microsoft latency profile and limits instead of --latency-ms/--rate/--burst")
    asyncio.run(main(parser.parse_args()))
