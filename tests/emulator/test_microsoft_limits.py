"""The emulator models Microsoft's published request limits (on by default; the suite starts emulators
with M365_EMULATOR_LIMITS=off) and, as a profile, Microsoft's latencies."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from m365_emulator.faults import Faults, FaultConfig, directory_units_per_10s, is_teams_request
from m365_emulator.server import EmulatorServer
from m365_emulator.settings import EmulatorSettings


@pytest.fixture
def limits(http: httpx.Client) -> Iterator[None]:
    assert http.put("/_admin/faults", json={"limits": "microsoft"}).json()["config"]["limits"] == "microsoft"
    yield
    http.delete("/_admin/faults")


def test_teams_requests_beyond_30_per_second_per_tenant_get_429_with_retry_after(limits, graph: httpx.Client) -> None:
    answers: list[httpx.Response] = []
    with ThreadPoolExecutor(16) as pool:  # faster than the budget refills, in bursts until Microsoft says so
        # (one burst of 120 could take 4 s on a loaded machine, 30/s: the budget's own rate; so bursts go on, up to 20)
        for _ in range(20):
            answers += pool.map(lambda _: graph.get("/admin/teams/userConfigurations", params={"$top": 1}), range(120))
            if any(a.status_code == 429 for a in answers):
                break
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled and {a.status_code for a in answers} == {200, 429}
    assert all(int(a.headers["retry-after"]) >= 1 and a.json()["error"]["code"] == "TooManyRequests" for a in throttled)
    assert graph.get("/domains").status_code == 200  # the directory's own budget is untouched


def test_the_emulator_started_without_limits_says_so(http: httpx.Client) -> None:
    http.delete("/_admin/faults")
    assert http.get("/_admin/faults").json()["config"]["limits"] == "off"


def test_an_emulator_models_the_limits_by_default(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("M365_EMULATOR_LIMITS")
    server = EmulatorServer(EmulatorSettings(data_dir=tmp_path, public_url=""))
    server.start()
    try:
        with httpx.Client(base_url=server.url, verify=str(server.ca_cert_path)) as admin:
            assert admin.get("/_admin/faults").json()["config"]["limits"] == "microsoft"
    finally:
        server.stop()


def test_budgets_follow_the_published_numbers() -> None:
    still = lambda: 1000.0  # noqa: E731 - a clock that does not move: no refill during the loops
    assert [directory_units_per_10s(n) for n in (10, 49, 50, 500, 501)] == [3500, 3500, 5000, 5000, 8000]
    assert is_teams_request("/_powershell/invoke") and is_teams_request("/v1.0/admin/teams/policy/userAssignments/assign")
    assert not is_teams_request("/v1.0/users")
    faults = Faults(tenant_size=lambda _tenant: 10, now=still)
    faults.configure(FaultConfig())
    # Directory: a GET of users costs 2 units (1 with $select); 3,500 units per 10 s for a small tenant.
    admitted = sum(faults.admit("app", "t1", "GET", "/v1.0/users", "$select=id") is None for _ in range(3600))
    assert admitted == 3500
    # Writes: 3,000 per 2.5 minutes, whatever the unit budget says.
    writes = Faults(tenant_size=lambda _tenant: 1000, now=still)
    writes.configure(FaultConfig())
    assert sum(writes.admit("app", "t1", "PATCH", "/v1.0/users/x", "") is None for _ in range(3100)) == 3000
    # Teams across tenants: 300 per second per app, 30 per tenant.
    teams = Faults(now=still)
    teams.configure(FaultConfig())
    per_tenant = [sum(teams.admit("app", f"t{i}", "GET", "/v1.0/admin/teams/userConfigurations", "") is None
                      for _ in range(40)) for i in range(12)]
    assert per_tenant[:10] == [30] * 10 and sum(per_tenant) == 300


def test_the_microsoft_profile_adds_realistic_latency() -> None:
    faults = Faults()
    faults.configure(FaultConfig(profile="microsoft", seed=1))
    reads = [faults.latency_seconds("GET", "/v1.0/users") for _ in range(200)]
    cmdlets = [faults.latency_seconds("POST", "/_powershell/invoke") for _ in range(200)]
    assert 0.15 <= min(reads) and max(reads) <= 0.4
    assert 1.0 <= min(cmdlets) and max(cmdlets) <= 3.0
    faults.configure(FaultConfig(latencyMs=20))
    assert faults.latency_seconds("GET", "/v1.0/users") == 0.02
