"""Is a customer tenant ready for Direct Routing through teamsvoice? Each check runs on its own and
reports a structured result; one failing check never hides the others.

    readiness = await check_tenant_readiness(connector, tenant_id)
    readiness.ready                      # every check passed
    readiness.check("voice_licences")    # ReadinessCheck(name, ok, detail, data)

Checks, in order:
- `graph_consent`: an app-only Graph token is obtainable (the tenant's admin consented to our app);
- `teams_admin_consent`: an app-only token for the Skype and Teams Tenant Admin API is obtainable;
- `verified_domains`: the tenant has a verified domain other than its *.onmicrosoft.com one (users' SIP
  addresses and the SBC's FQDN live on such a domain);
- `voice_licences`: free seats of Teams Phone for users, and of Teams Phone Resource Account for resource
  accounts (the latter reported, not required); which SKUs count is `rules.teams_phone_skus`;
- `teams_admin_api`: Graph's admin/teams userConfigurations answers and a read-only Teams cmdlet runs.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from teamsvoice.core.errors import DomainError
from teamsvoice.domain.tenant_voice.rules import custom_domains, resource_account_skus, teams_phone_skus
from teamsvoice.microsoft.directory_ports import DirectoryAdministration
from teamsvoice.microsoft.ports import Connector, TenantConnection

@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TenantReadiness:
    tenant_id: str
    checks: list[ReadinessCheck]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    def check(self, name: str) -> ReadinessCheck:
        return next(check for check in self.checks if check.name == name)

    def wire(self) -> dict[str, Any]:
        return {"tenantId": self.tenant_id, "ready": self.ready,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, **({"data": c.data} if c.data else {})}
                           for c in self.checks]}


async def _run(name: str, probe: Callable[[], Awaitable[ReadinessCheck]]) -> ReadinessCheck:
    try:
        return await probe()
    except DomainError as exc:
        return ReadinessCheck(name, False, exc.message, {"code": getattr(exc, "upstream_code", None) or exc.code})


async def check_tenant_readiness(connector: Connector, tenant_id: str) -> TenantReadiness:
    connection = connector.connect(tenant_id)
    checks = [
        await _run("graph_consent", lambda: _token(connector, tenant_id, "graph", "Microsoft Graph")),
        await _run("teams_admin_consent",
                   lambda: _token(connector, tenant_id, "teams_admin", "the Skype and Teams Tenant Admin API")),
    ]
    if not checks[0].ok:
        skipped = "skipped: no app-only Graph access to the tenant"
        checks += [ReadinessCheck(name, False, skipped) for name in ("verified_domains", "voice_licences")]
    else:
        admin = connection.directory_admin
        checks.append(await _run("verified_domains", lambda: _domains(admin)))
        checks.append(await _run("voice_licences", lambda: _licences(admin)))
    checks.append(await _run("teams_admin_api", lambda: _teams_admin(connection, graph_ok=checks[0].ok,
                                                                       cmdlets_ok=checks[1].ok)))
    return TenantReadiness(tenant_id, checks)


async def _token(connector: Connector, tenant_id: str, service: str, label: str) -> ReadinessCheck:
    name = f"{service}_consent"
    await connector.check_app_access(tenant_id, service)
    return ReadinessCheck(name, True, f"app-only access to {label} granted")


async def _domains(admin: DirectoryAdministration) -> ReadinessCheck:
    domains = await admin.domains()
    verified = [d.name for d in domains if d.is_verified]
    custom = [d.name for d in custom_domains(domains)]
    data = {"verified": verified, "custom": custom}
    if not custom:
        return ReadinessCheck("verified_domains", False,
                              "no verified domain other than *.onmicrosoft.com: add and verify the customer's domain", data)
    return ReadinessCheck("verified_domains", True, f"{len(custom)} verified custom domain(s): {', '.join(custom)}", data)


async def _licences(admin: DirectoryAdministration) -> ReadinessCheck:
    skus = await admin.subscribed_skus()
    phone, virtual = teams_phone_skus(skus), resource_account_skus(skus)
    data = {
        "phoneSystem": [{"sku": s.sku_part_number, "prepaid": s.prepaid, "consumed": s.consumed, "available": s.available}
                        for s in phone],
        "virtualUser": [{"sku": s.sku_part_number, "prepaid": s.prepaid, "consumed": s.consumed, "available": s.available}
                        for s in virtual],
    }
    free_phone = sum(s.available for s in phone)
    free_virtual = sum(s.available for s in virtual)
    if not phone:
        return ReadinessCheck("voice_licences", False, "no Teams Phone (MCOEV) subscription in the tenant", data)
    if free_phone == 0:
        return ReadinessCheck("voice_licences", False, "every Teams Phone (MCOEV) seat is in use", data)
    return ReadinessCheck("voice_licences", True,
                          f"{free_phone} free Teams Phone seat(s), {free_virtual} free resource-account seat(s)", data)


async def _teams_admin(connection: TenantConnection, *, graph_ok: bool, cmdlets_ok: bool) -> ReadinessCheck:
    data: dict[str, Any] = {}
    problems = []
    if graph_ok:
        try:
            await connection.teams_admin.check_graph_teams_admin()
            data["graph"] = "ok"
        except DomainError as exc:
            data["graph"] = exc.message
            problems.append(f"Graph admin/teams: {exc.message}")
    else:
        problems.append("Graph admin/teams not tried (no Graph access)")
    if cmdlets_ok:
        try:
            await connection.teams_admin.check_powershell()
            data["cmdlets"] = "ok"
        except DomainError as exc:
            data["cmdlets"] = exc.message
            problems.append(f"Teams PowerShell: {exc.message}")
    else:
        problems.append("Teams PowerShell not tried (no Teams admin access)")
    if problems:
        return ReadinessCheck("teams_admin_api", False, "; ".join(problems), data)
    return ReadinessCheck("teams_admin_api", True, "Teams admin API reachable (Graph admin/teams and cmdlets)", data)
