"""Plan and drift-scan timings against the emulator (prints figures; not a test). See bench/README.md.

    .venv/bin/python bench/voice_state.py [--users 5000] [--tenants 20] [--tenant-users 200]

- plan over one tenant of --users users, every user holding a number and a policy as the desired state
  says (the plan is empty), then with 1% of the users changed by hand (the plan lists them);
- a drift scan over --tenants tenants of --tenant-users users each: one plan per tenant, one after the
  other as the scan workflow runs them, and all at once for comparison.
Microsoft reads per plan: the Direct Routing objects (4 cmdlets) and every user's voice configuration
(Graph admin/teams/userConfigurations, paged).
"""

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from connector_throughput import PASSWORD, REDIRECT_URI, _submit, serve_emulator  # noqa: E402
from teamsvoice.domain.voice_state.service import plan_tenant  # noqa: E402
from teamsvoice.domain.voice_state.state import Assignment, DesiredState  # noqa: E402
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy  # noqa: E402
from teamsvoice.microsoft.connector import MicrosoftConnector  # noqa: E402
from teamsvoice.microsoft.voice_state import tenant_voice  # noqa: E402
from teamsvoice.settings import Settings  # noqa: E402

NAME = "teamsvoice-bench"


def register_app(url: str, ca: str) -> tuple[str, str]:
    app_id, secret = str(uuid.uuid4()), f"secret-{uuid.uuid4()}"
    with httpx.Client(base_url=url, verify=ca, timeout=120) as admin:
        admin.post("/_admin/applications", json={
            "appId": app_id, "displayName": "bench", "clientSecret": secret, "redirectUris": [REDIRECT_URI],
            "delegatedPermissions": ["Directory.ReadWrite.All"],
            "applicationPermissions": ["User.ReadWrite.All", "Directory.ReadWrite.All", "TeamsUserConfiguration.Read.All",
                                       "TeamsTelephoneNumber.ReadWrite.All", "TeamsPolicyUserAssign.ReadWrite.All"],
        }).raise_for_status()
    return app_id, secret


def seed_tenant(url: str, ca: str, app_id: str, domain: str, users: int) -> str:
    with httpx.Client(base_url=url, verify=ca, timeout=600) as admin:
        tenant = admin.post("/_admin/tenants", json={
            "displayName": domain, "domain": domain, "userCount": users,
            "globalAdmin": {"username": f"admin@{domain}", "password": PASSWORD},
            "licenses": [{"skuPartNumber": "ENTERPRISEPACK", "units": users + 10},
                         {"skuPartNumber": "MCOEV", "units": users + 10}],
        }).raise_for_status().json()["tenantId"]
    authorize = httpx.URL(f"{url}/{tenant}/oauth2/v2.0/authorize", params={
        "client_id": app_id, "response_type": "code", "redirect_uri": REDIRECT_URI, "state": "b",
        "scope": "openid Directory.ReadWrite.All", "prompt": "admin_consent"})
    with httpx.Client(verify=ca, timeout=60) as browser:
        page = _submit(browser, browser.get(authorize), username=f"admin@{domain}", password=PASSWORD)
        if page.status_code == 200:
            page = _submit(browser, page, consent="accept")
        assert page.status_code == 302, page.text
    return tenant


async def converge_tenant(connector: MicrosoftConnector, tenant: str, domain: str, prefix: int) -> DesiredState:
    """Puts the Direct Routing objects and every user's number and policy in place (in parallel, as a bulk
    job would), and answers the matching desired state."""
    connection = connector.connect(tenant)
    fqdn = f"sbc.{domain}"
    routing = RoutingInventory([PstnGateway(fqdn, 5061, True)], [NAME], [VoiceRoute(NAME, ".*", [fqdn], [NAME], 0)],
                               [VoiceRoutingPolicy(NAME, [NAME])])
    run = connection.cmdlets.run
    await run("New-CsOnlinePSTNGateway", {"Fqdn": fqdn, "SipSignalingPort": 5061, "Enabled": True})
    await run("Set-CsOnlinePstnUsage", {"Identity": "Global", "Usage": {"Add": [NAME]}})
    await run("New-CsOnlineVoiceRoute", {"Identity": NAME, "NumberPattern": ".*", "OnlinePstnGatewayList": [fqdn],
                                         "OnlinePstnUsages": [NAME]})
    await run("New-CsOnlineVoiceRoutingPolicy", {"Identity": NAME, "OnlinePstnUsages": [NAME]})
    users = sorted([u.user_principal_name async for u in connection.directory_admin.users(page_size=999)
                    if not u.user_principal_name.startswith("admin@")])
    assignments = [Assignment(upn.lower(), None, f"+{prefix}{i:06d}", NAME, True) for i, upn in enumerate(users)]
    # Microsoft gives a number only to a user licensed for Teams Phone (the seeded fifth without it, the emulator too).
    licensed = await connection.directory_admin.assign_licences_to_many(users, add=["MCOEV"])
    assert all(r.ok for r in licensed), [r for r in licensed if not r.ok][:3]

    async def one(a: Assignment) -> None:
        await connection.voice.assign_number(a.user_principal_name, a.phone_number or "")
        await connection.voice.grant_voice_routing_policy(a.user_principal_name, NAME)

    await asyncio.gather(*(one(a) for a in assignments))
    return DesiredState(tenant, routing, assignments)


async def timed_plan(connector: MicrosoftConnector, desired: DesiredState) -> tuple[float, int]:
    started = time.monotonic()
    plan = await plan_tenant(tenant_voice(connector.connect(desired.tenant_id)), desired)
    return time.monotonic() - started, len(plan.differences)


async def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="tv-bench-voice-"))
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=serve_emulator, args=(data / "m365", child), daemon=True)
    process.start()
    url, ca = parent.recv()
    try:
        app_id, secret = register_app(url, ca)
        settings = Settings(data_dir=data, microsoft_mode="emulator", microsoft_login_url=url,
                            microsoft_graph_url=f"{url}/v1.0", microsoft_powershell_url=f"{url}/_powershell/invoke",
                            microsoft_ca_bundle=ca, microsoft_client_id=app_id, microsoft_client_secret=secret,
                            microsoft_tenant_concurrency=32, microsoft_retry_max_attempts=1000,
                            microsoft_retry_max_wait_seconds=3600)
        connector = MicrosoftConnector(settings)

        started = time.monotonic()
        big = seed_tenant(url, ca, app_id, "big.bench.example", args.users)
        desired = await converge_tenant(connector, big, "big.bench.example", 3220)
        print(f"seeded and converged a {args.users}-user tenant in {time.monotonic() - started:.1f} s")
        seconds, count = await timed_plan(connector, desired)
        print(f"plan, {args.users} users, converged:        {seconds:6.2f} s  ({count} differences)")
        changed = desired.users[: max(1, args.users // 100)]
        desired.users = [Assignment(a.user_principal_name, a.user_id, a.phone_number, None, True) if a in changed else a
                         for a in desired.users]
        seconds, count = await timed_plan(connector, desired)
        print(f"plan, {args.users} users, 1% drifted:       {seconds:6.2f} s  ({count} differences)")

        if args.tenants < 1:
            await connector.aclose()
            return
        started = time.monotonic()
        fleet = []
        for index in range(args.tenants):
            domain = f"t{index}.bench.example"
            fleet.append(await converge_tenant(connector, seed_tenant(url, ca, app_id, domain, args.tenant_users),
                                               domain, 3230 + index))
        print(f"\nseeded and converged {args.tenants} tenants of {args.tenant_users} users in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        for desired in fleet:
            await timed_plan(connector, desired)
        sequential = time.monotonic() - started
        started = time.monotonic()
        await asyncio.gather(*(timed_plan(connector, d) for d in fleet))
        parallel = time.monotonic() - started
        print(f"drift scan, {args.tenants} tenants, one after the other (as the scan workflow): {sequential:6.2f} s "
              f"({sequential / args.tenants:.2f} s per tenant)")
        print(f"drift scan, {args.tenants} tenants, all at once:                           {parallel:6.2f} s")
        await connector.aclose()
    finally:
        parent.send("stop")
        process.join(timeout=15)


if __name__ == "__main__":
    from harness import end_children_on_exit  # bench/harness.py: what this script starts ends with it

    end_children_on_exit()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--tenant-users", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
