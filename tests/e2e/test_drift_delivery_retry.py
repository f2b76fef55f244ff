"""A drift event delivery that is retried is stamped and signed anew at each try: a receiver that refuses stale
timestamps (replay protection, here 5 minutes) and fails the first two tries still accepts the third, although
the event was recorded an hour ago. Every try carries its own time in the body and the timestamp header, a valid
signature of the bytes sent, and the same event otherwise."""

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from teamsvoice.core.security import Keyring, load_or_create_master_key
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state import drift, workflows
from teamsvoice.domain.voice_state.models import DriftDelivery, DriftWebhook
from tests.support.database import in_session

STALE_AFTER = 300
SECRET = "replay-protected"


class StrictReceiver:
    """Refuses a bad signature or a timestamp older than STALE_AFTER (400), fails the first `fail` good tries
    (503), then accepts (200). Records every try."""

    def __init__(self, fail: int) -> None:
        self.tries: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                timestamp = self.headers.get(drift.TIMESTAMP_HEADER, "")
                expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
                fresh = timestamp.isdigit() and int(timestamp) >= time.time() - STALE_AFTER
                valid = hmac.compare_digest(expected, self.headers.get(drift.SIGNATURE_HEADER, ""))
                good = fresh and valid and json.loads(raw)["timestamp"] == int(timestamp)
                status = 400 if not good else 503 if sum(t["status"] == 503 for t in receiver.tries) < fail else 200
                receiver.tries.append({"raw": raw, "timestamp": timestamp, "status": status})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


async def test_each_try_is_stamped_and_signed_when_sent(live, organisation) -> None:  # type: ignore[no-untyped-def]
    started = int(time.time())
    receiver = StrictReceiver(fail=2)
    keyring = Keyring(load_or_create_master_key(live.settings.secret_key, live.settings.data_dir))
    tenant = str(uuid.uuid4())
    recorded_at = started - 3600  # recorded an hour ago: sent as recorded, every try would be refused

    async def make(session) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
        enterprise = Enterprise(reseller_id=organisation.resellers[0].reseller_id, enterprise_name="Replay Guarded",
                                tenant_id=tenant)
        hook = DriftWebhook(reseller_id=organisation.resellers[0].reseller_id, url=f"{receiver.url}/drift",
                            secret_encrypted=keyring.encrypt(SECRET, purpose=drift.SECRET_PURPOSE))
        session.add_all([enterprise, hook])
        await session.flush()
        body = json.dumps({"eventId": "11:drift.detected", "type": "drift.detected", "timestamp": recorded_at,
                           "tenantId": tenant, "enterpriseId": enterprise.id, "event": {"id": 11, "detail": "é"}},
                          separators=(",", ":"))
        delivery = DriftDelivery(webhook_id=hook.id, body=body, status="pending", attempts=0)
        session.add(delivery)
        await session.flush()
        return delivery.id, delivery.job_key, body

    async def status(session) -> tuple[str, int]:  # type: ignore[no-untyped-def]
        row = await session.get(DriftDelivery, delivery_id)
        return row.status, row.attempts

    try:
        delivery_id, job_key, body = await in_session(live, make)
        await asyncio.to_thread(workflows.start_delivery, delivery_id, job_key)
        for _ in range(300):
            if (await in_session(live, status))[0] != "pending":
                break
            await asyncio.sleep(0.1)
        tries = list(receiver.tries)
    finally:
        receiver.stop()

    assert [t["status"] for t in tries] == [503, 503, 200], tries  # none refused as stale or badly signed
    assert await in_session(live, status) == ("delivered", 3)
    recorded = json.loads(body)
    for t in tries:
        sent = json.loads(t["raw"])
        assert sent["timestamp"] == int(t["timestamp"]) >= started  # the try's own time, not the recording's
        assert {**sent, "timestamp": recorded_at} == recorded  # the same event otherwise
        assert t["raw"] == drift.stamped(body, sent["timestamp"])  # same field order and encoding


async def test_a_try_that_fails_with_a_defect_is_tried_again(live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A try that fails with an error that is no domain error (a defect) is a failed try, its error recorded,
    tried again later: it ended the delivery's workflow and the delivery stayed pending, never tried again."""
    receiver = StrictReceiver(fail=0)
    keyring = Keyring(load_or_create_master_key(live.settings.secret_key, live.settings.data_dir))
    original, calls, seen = drift.stamped, [], []
    failed_try_seen = threading.Event()  # the second try waits until the test saw the first one's error recorded

    def defect_once(body: str, now: int) -> bytes:
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("a defect")
        failed_try_seen.wait(60)  # (not 0.2 s of retry delay that a busy machine's polls can miss)
        return original(body, now)

    async def make(session) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        hook = DriftWebhook(reseller_id=organisation.resellers[0].reseller_id, url=f"{receiver.url}/drift",
                            secret_encrypted=keyring.encrypt(SECRET, purpose=drift.SECRET_PURPOSE))
        session.add(hook)
        await session.flush()
        delivery = DriftDelivery(webhook_id=hook.id, status="pending", attempts=0, body=json.dumps(
            {"eventId": "12:drift.detected", "type": "drift.detected", "timestamp": 0, "event": {"id": 12}}))
        session.add(delivery)
        await session.flush()
        return delivery.id, delivery.job_key

    async def state(session) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
        row = await session.get(DriftDelivery, delivery_id)
        return row.status, row.last_error

    monkeypatch.setattr(drift, "stamped", defect_once)
    try:
        delivery_id, job_key = await in_session(live, make)
        await asyncio.to_thread(workflows.start_delivery, delivery_id, job_key)
        for _ in range(300):
            seen.append(await in_session(live, state))
            if seen[-1] == ("pending", "Unexpected error: RuntimeError"):
                failed_try_seen.set()
            if seen[-1][0] != "pending":
                break
            await asyncio.sleep(0.1)
    finally:
        failed_try_seen.set()
        receiver.stop()
    assert seen[-1] == ("delivered", None) and len(calls) == 2 and [t["status"] for t in receiver.tries] == [200], seen
    assert ("pending", "Unexpected error: RuntimeError") in seen  # the failed try, shown while it waited
