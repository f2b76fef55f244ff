"""Drift: what scans of linked tenants saw differ from the desired state, as events with when each was
first and last seen (a resolved one kept `TEAMSVOICE_DRIFT_RETENTION_DAYS`: `purge_resolved`); per-tenant
auto-apply; signed webhook events to the provider; a Prometheus gauge.

Webhook events (teamsvoice's design): `POST <url>` with a JSON body
`{"eventId", "type": "drift.detected" | "drift.resolved", "timestamp", "tenantId", "enterpriseId", "difference"}`
and headers `X-Teamsvoice-Timestamp` (the body's `timestamp`, Unix seconds) and
`X-Teamsvoice-Signature: sha256=<hex HMAC-SHA256 of the raw body with the reseller's secret>`. The body
carries the timestamp, so the signature covers it: a receiver checks the signature, then refuses stale
timestamps and repeated `eventId`s. Deliveries are retried durably until a 2xx; redirects are not followed.
Each try is stamped and signed when it is sent (`stamped`), so a retry an hour later is not refused as stale;
the rest of the body, `eventId` included, is the same at every try.
"""

import hashlib
import hmac
import ipaddress
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import anyio
import httpx
from prometheus_client import Gauge
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core import destinations
from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.metrics import REGISTRY
from teamsvoice.core.security import Keyring
from teamsvoice.domain.audit import retention
from teamsvoice.domain.orgs import repository as orgs
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.domain.voice_state import repository_drift as records
from teamsvoice.domain.voice_state.models import DriftDelivery, DriftEvent, DriftWebhook, TenantDriftSettings
from teamsvoice.domain.voice_state.planner import Plan
from teamsvoice.settings import Settings
from teamsvoice.domain.consent.redirects import parse_webhook_url

SECRET_PURPOSE = "voice-drift-webhook"
SIGNATURE_HEADER = "X-Teamsvoice-Signature"
TIMESTAMP_HEADER = "X-Teamsvoice-Timestamp"
SIGNATURE_DOC = f"{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256(secret, raw body)>; {TIMESTAMP_HEADER} = body.timestamp"

DRIFTED_OBJECTS = Gauge("teamsvoice_voice_drifted_objects", "Differences between a tenant and its desired voice state, "
                        "as the last drift scan saw them", ["tenant"], registry=REGISTRY)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stamped(body: str, now: int) -> bytes:
    """The recorded event as one try sends it: `timestamp` is the try's time (Unix seconds), every other
    field as recorded, in the same order and encoding."""
    event = json.loads(body)
    event["timestamp"] = now
    return json.dumps(event, separators=(",", ":")).encode()


def new_scan_key() -> str:
    return str(uuid.uuid4())


async def enterprises_in_scope(session: AsyncSession, principal: Principal) -> list[int]:
    return await records.linked_enterprise_ids(session, principal)


async def tenants_overview(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    rows = await records.linked_with_settings(session, principal)
    open_counts = await records.open_event_counts(session)
    return [{"tenantId": e.tenant_id, "enterpriseId": e.id, "enterpriseName": e.enterprise_name,
             "openDrift": open_counts.get(e.id, 0), "autoApply": bool(s and s.auto_apply),
             "lastScanAt": s.last_scan_at.isoformat() + "Z" if s and s.last_scan_at else None,
             "lastScanError": s.last_scan_error if s else None} for e, s in rows]


async def tenant_overview(session: AsyncSession, principal: Principal, enterprise_id: int) -> dict[str, Any] | None:
    """The row `tenants_overview` gives the enterprise (None where it gives none: the caller does not see the
    enterprise, or it is not linked), reading that enterprise's rows only: one statement, however many enterprises
    the caller sees and however many drift events the others have."""
    found = await records.linked_with_settings_of(session, principal, enterprise_id)
    if found is None:
        return None
    e, s, open_drift = found
    return {"tenantId": e.tenant_id, "enterpriseId": e.id, "enterpriseName": e.enterprise_name,
            "openDrift": open_drift, "autoApply": bool(s and s.auto_apply),
            "lastScanAt": s.last_scan_at.isoformat() + "Z" if s and s.last_scan_at else None,
            "lastScanError": s.last_scan_error if s else None}


async def first_open_events(session: AsyncSession, enterprise_id: int, tenant_id: str | None,
                            limit: int) -> list[dict[str, Any]]:
    """The enterprise's oldest `limit` open drift events, rendered as `events` renders them (the caller checked
    that it may see the enterprise: `tenant_overview`)."""
    return [render_event(e, tenant_id) for e in await records.first_open_events(session, enterprise_id, limit)]


def render_event(event: DriftEvent, tenant_id: str | None) -> dict[str, Any]:
    return {"eventId": event.id, "tenantId": tenant_id, "enterpriseId": event.enterprise_id,
            "differenceId": event.difference_id, "kind": event.kind, "action": event.action, "drift": event.drift,
            "detail": event.detail, "difference": event.difference,
            "firstSeenAt": event.first_seen_at.isoformat() + "Z", "lastSeenAt": event.last_seen_at.isoformat() + "Z",
            "resolvedAt": event.resolved_at.isoformat() + "Z" if event.resolved_at else None}


async def events(session: AsyncSession, principal: Principal, tenant_id: str | None, *, include_resolved: bool,
                 after_id: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The drift events the caller sees, oldest first (`eventId` order): after the event `after_id` and at most
    `limit`, when given (a page)."""
    return [render_event(e, t) for e, t in await records.events_in_scope(
        session, principal, tenant_id, include_resolved=include_resolved, after_id=after_id, limit=limit)]


def purge_resolved(engine: Engine, days: int, *, now: datetime | None = None, batch: int = retention.BATCH) -> int:
    """Deletes the drift events resolved more than `days` days ago (none when `days` is 0:
    `TEAMSVOICE_DRIFT_RETENTION_DAYS`) and answers how many; an open event stays however old. In batches, each its
    own transaction, as the audit log's purge (`audit/retention.purge_in_batches`); run by the scheduled job
    `drift_purge` (audit/workflows.py)."""
    return retention.purge_in_batches(engine, days, records.resolved_event_ids_before, records.delete_events,
                                      now=now, batch=batch)


async def settings_of(session: AsyncSession, enterprise: Enterprise) -> TenantDriftSettings:
    """The tenant's row, created on first use. A scan job and an API call may both create it at once: the
    loser's insert fails inside its savepoint and it reads the winner's row."""
    row = await records.drift_settings(session, enterprise.id)
    if row is None:
        try:
            async with session.begin_nested():
                session.add(TenantDriftSettings(enterprise_id=enterprise.id, auto_apply=False))
        except IntegrityError:
            pass  # created by another transaction first
        row = await records.drift_settings(session, enterprise.id)
        assert row is not None
    return row


async def set_auto_apply(session: AsyncSession, enterprise: Enterprise, auto_apply: bool) -> TenantDriftSettings:
    row = await settings_of(session, enterprise)
    row.auto_apply = auto_apply
    return row


def check_webhook_url(url: str, allow_loopback: bool) -> str:
    if len(url) > 2000:
        raise ValidationFailed("url: at most 2000 characters")
    parsed = parse_webhook_url(url, "url")  # the consent webhooks' parser: host, port, path, no user info or fragment
    host = parsed.host
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if parsed.scheme == "http" and not (loopback and allow_loopback):
        raise ValidationFailed("url: must use https")
    if loopback and not allow_loopback:
        raise ValidationFailed("url: loopback addresses are not allowed")
    return url


def _reachable_by_deliveries(url: str) -> None:
    """Refused now, a URL whose host is or resolves to an internal address (link-local, private, 127.1, a
    mapped IPv6 loopback...): every delivery to it would be refused (core/destinations.py checks each one), and the
    reseller, handed a secret, would never know. A name that does not resolve yet is accepted (deliveries retry)."""
    try:
        destinations.check_destination(url, allow_internal=False)
    except destinations.RefusedDestination as exc:
        raise ValidationFailed(f"url: {exc.message.removeprefix('webhook URL: ')}") from None
    except httpx.HTTPError:
        pass


async def set_webhook(session: AsyncSession, keyring: Keyring, settings: Settings, principal: Principal, url: str) -> str:
    """Registers (or replaces) the reseller's webhook with a new secret; answers the secret (only now)."""
    assert principal.reseller_id is not None
    check_webhook_url(url, settings.allow_loopback_redirects)
    if not settings.allow_loopback_redirects:
        await anyio.to_thread.run_sync(_reachable_by_deliveries, url)
    secret = secrets.token_urlsafe(32)
    row = await records.webhook_of(session, principal.reseller_id)
    if row is None:
        row = DriftWebhook(reseller_id=principal.reseller_id, url=url, secret_encrypted="")
        session.add(row)
    row.url, row.secret_encrypted = url, keyring.encrypt(secret, purpose=SECRET_PURPOSE)
    await session.flush()
    return secret


async def _webhooks_for(session: AsyncSession, reseller_id: int) -> list[DriftWebhook]:
    """The enterprise's reseller and each reseller above it that registered a webhook."""
    found: list[DriftWebhook] = []
    current: int | None = reseller_id
    for _ in range(10):
        if current is None:
            break
        hook = await records.webhook_of(session, current)
        if hook is not None:
            found.append(hook)
        reseller = await orgs.reseller_by_id(session, current)
        current = reseller.parent_id if reseller is not None else None
    return found


async def record_scan(session: AsyncSession, enterprise: Enterprise, plan: Plan, *,
                      notify: bool = True) -> tuple[int, list[DriftDelivery]]:
    """Updates the tenant's drift events from a scan's plan; answers the open count and the webhook
    deliveries to send (one per new or resolved event and webhook; none unless `notify`)."""
    now = utcnow()
    open_events = {e.difference_id: e for e in await records.open_events(session, enterprise.id)}
    changes: list[tuple[str, DriftEvent]] = []
    seen: set[str] = set()
    for d in plan.differences:
        seen.add(d.id)
        event = open_events.get(d.id)
        wire = d.wire()
        if event is not None and event.difference == wire:
            event.last_seen_at = now
            continue
        if event is not None:  # the same object drifted differently: that one is over, this one starts
            event.resolved_at = now
        event = DriftEvent(enterprise_id=enterprise.id, difference_id=d.id, kind=d.kind, action=d.action, drift=d.drift,
                           detail=d.detail, difference=wire, first_seen_at=now, last_seen_at=now)
        session.add(event)
        changes.append(("drift.detected", event))
    for difference_id, event in open_events.items():
        if difference_id not in seen:
            event.resolved_at = now
            changes.append(("drift.resolved", event))
    settings = await settings_of(session, enterprise)
    settings.last_scan_at, settings.last_scan_error = now, None
    await session.flush()
    deliveries: list[DriftDelivery] = []
    hooks = await _webhooks_for(session, enterprise.reseller_id) if changes and notify else []
    for kind, event in changes:
        body = json.dumps({"eventId": f"{event.id}:{kind}", "type": kind, "timestamp": int(time.time()),
                           "tenantId": enterprise.tenant_id, "enterpriseId": enterprise.id,
                           "event": render_event(event, enterprise.tenant_id)}, separators=(",", ":"))
        for hook in hooks:
            delivery = DriftDelivery(webhook_id=hook.id, url=hook.url, secret_encrypted=hook.secret_encrypted, body=body,
                                     status="pending", attempts=0)
            session.add(delivery)
            deliveries.append(delivery)
    await session.flush()
    DRIFTED_OBJECTS.labels(tenant=enterprise.tenant_id or str(enterprise.id)).set(len(plan.differences))
    return len(plan.differences), deliveries


async def record_scan_failure(session: AsyncSession, enterprise: Enterprise, message: str) -> None:
    settings = await settings_of(session, enterprise)
    settings.last_scan_at, settings.last_scan_error = utcnow(), message


def delivery_target(delivery: DriftDelivery, hook: DriftWebhook) -> tuple[str, str]:
    """Where a delivery goes and the secret (encrypted) it is signed with: those its webhook had when the delivery
    was made, every try and every retry alike (the rule of consent deliveries, which go to their redirectUrl); a
    webhook registered again meanwhile gets only the deliveries made after. A row written without them (by a
    process of a release before migration 0018) goes where it went then: to its webhook's."""
    if delivery.url is not None and delivery.secret_encrypted is not None:
        return delivery.url, delivery.secret_encrypted
    return hook.url, hook.secret_encrypted


def pending_deliveries(rows: Sequence[DriftDelivery]) -> list[tuple[int, str]]:
    return [(d.id, d.job_key) for d in rows]
