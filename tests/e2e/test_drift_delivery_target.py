"""A drift event delivery goes to the URL, signed with the secret, its webhook had when the delivery was made (as a
consent delivery goes to its redirectUrl). Found by a probe: a delivery still being retried when the reseller
registered its webhook again went to the new URL signed with the new secret, and `teamsvoice jobs list` named the
new URL for it."""

import hashlib
import hmac
import json
import time

import anyio
from typer.testing import CliRunner

from teamsvoice import cli
from teamsvoice.core.db import create_engine, session_factory, transaction
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state import drift, workflows
from teamsvoice.domain.voice_state.models import DriftDelivery
from teamsvoice.domain.voice_state.planner import Difference, Plan
from tests.cli.support import server_env
from tests.support.ctt import bearer
from tests.support.onboarding import Onboarding

API = "/api/teamsvoice/v1"


async def _delivery(live, delivery_id: int) -> DriftDelivery:  # type: ignore[no-untyped-def]
    engine = create_engine(live.settings.effective_database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            delivery = await session.get(DriftDelivery, delivery_id)
            assert delivery is not None
            return delivery
    finally:
        await engine.dispose()


async def test_a_pending_delivery_keeps_its_url_and_secret_when_the_webhook_changes(
        client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    onboarding = Onboarding(client, live, organisation, receiver, {"domain": "drift-target.example"})
    enterprise_id = await onboarding.create()
    token = onboarding.token
    old_url, new_url = f"{receiver.url}/drift-old", f"{receiver.url.replace('127.0.0.1', 'localhost')}/drift-new"
    hook = await client.put(f"{API}/webhook", headers=bearer(token), json={"url": old_url})
    assert hook.status_code == 200, hook.text
    old_secret = hook.json()["secret"]

    receiver.fail_next = 10_000  # the receiver is down: the delivery stays pending, tried again and again
    try:
        engine = create_engine(live.settings.effective_database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                enterprise = await session.get(Enterprise, enterprise_id)
                assert enterprise is not None
                difference = Difference("policy:Intl", "policy", "Intl", None, "create", {"identity": "Intl"}, None,
                                        "deleted_out_of_band", "policy Intl is missing")
                _, made = await drift.record_scan(session, enterprise, Plan("tenant", [difference]))
                (delivery_id, job_key), = drift.pending_deliveries(made)
        finally:
            await engine.dispose()
        await workflows.enqueue_delivery(delivery_id, job_key)
        deadline = time.monotonic() + 20
        while (await _delivery(live, delivery_id)).attempts < 1:
            assert time.monotonic() < deadline, "the delivery was never tried"
            await anyio.sleep(0.1)
        hook = await client.put(f"{API}/webhook", headers=bearer(token), json={"url": new_url})
        assert hook.status_code == 200, hook.text
        new_secret = hook.json()["secret"]

        # The jobs list names where the delivery goes: the URL it was made for.
        listed = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(
            cli.app, ["jobs", "list", "--kind", "drift-webhook", "--json", "--data-dir", str(live.settings.data_dir)],
            env=server_env(live)))
        assert listed.exit_code == 0, listed.output
        mine = [j for j in json.loads(listed.output) if j["ref"] == f"drift-webhook:{delivery_id}"]
        assert [j["title"] for j in mine] == [f"drift.detected to {old_url.split('/')[2]}"], mine
    finally:
        receiver.fail_next = 0
    delivered = receiver.at("/drift-old", timeout=30)[0]
    expected = "sha256=" + hmac.new(old_secret.encode(), delivered["raw"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(delivered["headers"]["x-teamsvoice-signature"], expected)
    assert new_secret != old_secret
    assert not [r for r in receiver.received if r["path"] == "/drift-new"]
    deadline = time.monotonic() + 10
    while (await _delivery(live, delivery_id)).status != "delivered":
        assert time.monotonic() < deadline
        await anyio.sleep(0.1)
