"""Fault injection through the emulator's admin API (/_admin/faults): a 429 storm, a 5% 5xx rate, a
throttle budget and a cmdlet that times out delay work but lose none of it; retries stop at the cap with a
clear error."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from teamsvoice.core.errors import UpstreamError
from teamsvoice.core.metrics import REGISTRY
from teamsvoice.microsoft.budget import DIRECTORY_WRITE
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.directory import DirectoryAdmin, DirectoryUser
from tests.microsoft.support import MsEmulator, RegisteredApp, SeededTenant, connector_settings
from tests.support.emulated import TEAMS_PHONE_USERS


@pytest.fixture
def faults(ms_emulator: MsEmulator) -> Iterator[MsEmulator]:
    ms_emulator.admin.delete("/_admin/faults").raise_for_status()
    yield ms_emulator
    ms_emulator.admin.delete("/_admin/faults").raise_for_status()


def inject(emulator: MsEmulator, **config: object) -> None:
    response = emulator.admin.put("/_admin/faults", json=config)
    assert response.status_code == 200, response.text


def injected(emulator: MsEmulator) -> dict[str, int]:
    return emulator.admin.get("/_admin/faults").json()["injected"]


@pytest.fixture
async def users(connector: MicrosoftConnector, tenant: SeededTenant) -> list[DirectoryUser]:
    """120 users licensed for Teams Phone (the 5xx test gives numbers to 60 of them)."""
    admin = connector.connect(tenant.tenant_id).directory_admin
    listed = admin.users(filter=TEAMS_PHONE_USERS, page_size=999)
    return [u async for u in listed if u.user_principal_name != tenant.admin][:120]


async def update_all(admin: DirectoryAdmin, users: list[DirectoryUser], tag: str) -> None:
    """100 single PATCHes at once (the tenant limit queues them) plus the rest through $batch."""
    singles, batched = users[:100], users[100:]
    await asyncio.gather(*(admin.update_user(u.id, job_title=f"{tag}-{u.id[:8]}") for u in singles))
    results = await admin.update_users({u.id: {"job_title": f"{tag}-{u.id[:8]}"} for u in batched})
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]


async def assert_all_applied(admin: DirectoryAdmin, users: list[DirectoryUser], tag: str) -> None:
    titles = {u.id: u.job_title async for u in admin.users(page_size=999)}
    assert [u.id for u in users if titles[u.id] != f"{tag}-{u.id[:8]}"] == []


async def test_a_429_storm_delays_work_but_loses_none(faults: MsEmulator, connector: MicrosoftConnector,
                                                     tenant: SeededTenant, users: list[DirectoryUser]) -> None:
    admin = connector.connect(tenant.tenant_id).directory_admin
    tag = f"storm-{uuid.uuid4().hex[:6]}"
    inject(faults, storm429={"count": 150, "retryAfterSeconds": 0})
    await update_all(admin, users, tag)
    assert injected(faults)["storm429"] == 150
    await assert_all_applied(admin, users, tag)


async def test_a_5_percent_5xx_rate_delays_work_but_loses_none(faults: MsEmulator, connector: MicrosoftConnector,
                                                              tenant: SeededTenant, users: list[DirectoryUser]) -> None:
    admin = connector.connect(tenant.tenant_id).directory_admin
    tag = f"flaky-{uuid.uuid4().hex[:6]}"
    inject(faults, errorRate5xx=0.05, errorStatus=503, seed=7)
    await update_all(admin, users, tag)
    # A second round of voice changes through the cmdlet endpoint under the same fault rate.
    connection = connector.connect(tenant.tenant_id)
    numbers = {u.user_principal_name: f"+1206555{index:04d}" for index, u in enumerate(users[:60])}
    await asyncio.gather(*(connection.voice.assign_number(upn, number) for upn, number in numbers.items()))
    assert injected(faults)["serverErrors"] > 0
    inject(faults)
    await assert_all_applied(admin, users, tag)
    for user in users[:60]:
        state = await connection.voice.voice_state(user.id)
        assert state.phone_numbers == [numbers[user.user_principal_name]] and state.enterprise_voice


async def test_batch_retries_only_the_throttled_requests(faults: MsEmulator, connector: MicrosoftConnector,
                                                         tenant: SeededTenant, users: list[DirectoryUser]) -> None:
    admin = connector.connect(tenant.tenant_id).directory_admin
    tag = f"budget-{uuid.uuid4().hex[:6]}"
    # The 60 updates go in $batches of 20; the burst takes the first batch only, and the rest would need 4 s of
    # refill to pass unthrottled (at 40/s and a burst of 25, a client slowed by a loaded machine spread them out
    # enough that none was throttled: the test failed without a fault in the code).
    inject(faults, throttle={"requestsPerSecond": 10, "burst": 20})

    def counted(outcome: str) -> float:
        return REGISTRY.get_sample_value("teamsvoice_microsoft_budget_requests_total", {
            "service_class": "directory-write", "tenant": tenant.tenant_id.lower(), "outcome": outcome}) or 0.0

    lane = connector.budget.lane(tenant.tenant_id, DIRECTORY_WRITE)
    before = counted("throttled"), counted("answered"), lane.last_cut
    results = await admin.update_users({u.id: {"job_title": f"{tag}-{u.id[:8]}"} for u in users[:60]})
    assert all(r.ok for r in results)
    throttled = injected(faults)["throttled"]
    assert throttled > 0
    # The budget counts the requests refused inside a batch answered 200 as throttled (and cuts the lane's window:
    # it grows back as requests are answered), as it does a call answered 429: each update answered once, each
    # refusal counted once.
    assert (counted("throttled") - before[0], counted("answered") - before[1]) == (throttled, 60)
    assert lane.last_cut > before[2]
    inject(faults)
    await assert_all_applied(admin, users[:60], tag)


async def test_a_cmdlet_that_times_out_is_retried(faults: MsEmulator, connector: MicrosoftConnector,
                                                  tenant: SeededTenant, users: list[DirectoryUser]) -> None:
    connection = connector.connect(tenant.tenant_id)
    user = users[-1]
    inject(faults, cmdletTimeout={"cmdlet": "Set-CsPhoneNumberAssignment", "count": 2, "seconds": 0.2, "afterApply": True})
    # Enterprise Voice on its own is still a cmdlet (numbers go through Graph's number operations).
    await connection.voice.set_enterprise_voice(user.user_principal_name, True)
    assert injected(faults)["cmdletTimeouts"] == 2
    assert (await connection.voice.voice_state(user.id)).enterprise_voice is True


async def test_retries_stop_at_the_attempt_cap(faults: MsEmulator, app: RegisteredApp, tenant: SeededTenant,
                                               tmp_path: Path) -> None:
    capped = MicrosoftConnector(connector_settings(faults, app, tmp_path, microsoft_retry_max_attempts=3))
    try:
        connection = capped.connect(tenant.tenant_id)
        inject(faults, storm429={"count": 1000, "retryAfterSeconds": 0})
        with pytest.raises(UpstreamError, match=r"^gave up after 3 attempts: .*429 TooManyRequests") as graph:
            await connection.directory_admin.update_user(tenant.admin, job_title="never")
        assert (graph.value.retryable, graph.value.status, graph.value.upstream_code) == (True, 429, "TooManyRequests")
        with pytest.raises(UpstreamError, match=r"^gave up after 3 attempts: Set-CsPhoneNumberAssignment failed") as cmdlet:
            await connection.voice.set_enterprise_voice(tenant.admin, True)
        assert (cmdlet.value.status, cmdlet.value.upstream_code) == (429, "TooManyRequests")
        assert injected(faults)["storm429"] == 6
    finally:
        await capped.aclose()


async def test_retries_stop_at_the_wait_cap(faults: MsEmulator, app: RegisteredApp, tenant: SeededTenant,
                                            tmp_path: Path) -> None:
    capped = MicrosoftConnector(connector_settings(faults, app, tmp_path, microsoft_retry_max_wait_seconds=2))
    try:
        admin = capped.connect(tenant.tenant_id).directory_admin
        inject(faults, storm429={"count": 1000, "retryAfterSeconds": 30})
        with pytest.raises(UpstreamError, match=r"^gave up after 1 attempt: .*Too many requests"):
            await admin.user(tenant.admin)
    finally:
        await capped.aclose()
