"""Bulk items store a neutral outcome: an item's `error` (and a pending item's `details.lastError`) was Fusion's
error body `{"code": <Fusion number>, "reason"}`; it becomes `core.errors.describe`'s `{"kind", "code", "message"}`
(plus `status`, `retryable` for Microsoft's failures), which the Fusion API renders back to the same body.

Revision ID: 0011_neutral_bulk_outcomes
Revises: 0008_fusion_locations
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011_neutral_bulk_outcomes"
down_revision = "0008_fusion_locations"
branch_labels = None
depends_on = None

# Frozen copy (this revision) of what each Fusion number meant: (kind, code) as core.errors.describe writes them.
BY_NUMBER: dict[int, tuple[str, str]] = {
    1000: ("validation_failed", "validation_failed"),
    1003: ("permission_denied", "permission_denied"),
    1004: ("not_found", "not_found"),
    1009: ("conflict", "conflict"),
    1012: ("precondition_failed", "precondition_failed"),
    1500: ("unexpected", "unexpected"),
    1502: ("upstream_error", "upstream_error"),
    1503: ("upstream_error", "upstream_error"),
    2001: ("validation_failed", "invalid_next_token"),
    2004: ("not_found", "no_ms_teams_tenant"),
    2010: ("conflict", "number_in_an_inventory"),
    2011: ("conflict", "number_taken"),
    2012: ("validation_failed", "number_not_in_subscription"),
    2020: ("precondition_failed", "tenant_has_subscriptions"),
    2021: ("precondition_failed", "subscription_not_deletable"),
    2030: ("conflict", "wizard_running"),
    2031: ("precondition_failed", "no_ms_teams_admin"),
    2032: ("precondition_failed", "already_onboarded"),
    2060: ("validation_failed", "licence_quota_exceeded"),
    2061: ("validation_failed", "licences_below_in_use"),
    2062: ("validation_failed", "wrong_password"),
    2063: ("validation_failed", "self_delete"),
    2064: ("conflict", "username_taken"),
    2070: ("not_found", "location_not_found"),
    2071: ("validation_failed", "location_in_use"),
    2072: ("validation_failed", "user_has_no_number"),
    2089: ("conflict", "bulk_job_ended"),
    2090: ("not_found", "teams_user_not_found"),
    2091: ("not_found", "group_not_found"),
    2092: ("not_found", "licence_not_found"),
    2093: ("validation_failed", "voice_routing_policy_refused"),
    2094: ("validation_failed", "invalid_bulk_item"),
    2095: ("not_found", "template_not_found"),
    2096: ("conflict", "template_name_taken"),
    2097: ("validation_failed", "default_template_read_only"),
    2098: ("not_found", "bulk_job_not_found"),
    2099: ("not_found", "resource_account_not_found"),
}
NUMBER_OF = {code: number for number, (_, code) in BY_NUMBER.items() if number not in (1502, 1503)} | {
    "number_assigned": 2011}
BATCH = 500

items = sa.table("fusion_bulk_items", sa.column("id", sa.Integer), sa.column("status", sa.String),
                 sa.column("error", sa.JSON), sa.column("details", sa.JSON))


def neutral(body: Any) -> Any:
    """Fusion's `{"code", "reason"}` as a neutral outcome (anything else is left as it is)."""
    if not isinstance(body, dict) or "reason" not in body or "kind" in body:
        return body
    number = body.get("code")
    kind, code = BY_NUMBER.get(number, ("domain_error", "domain_error")) if isinstance(number, int) else (
        "domain_error", "domain_error")
    outcome: dict[str, Any] = {"kind": kind, "code": code, "message": str(body.get("reason") or "")}
    if kind == "upstream_error":
        outcome |= {"status": None, "retryable": number == 1503}
    return outcome


def fusion(outcome: Any) -> Any:
    """The neutral outcome as Fusion's `{"code", "reason"}` again (downgrade)."""
    if not isinstance(outcome, dict) or "kind" not in outcome:
        return outcome
    if outcome["kind"] == "upstream_error":
        number = 1009 if outcome.get("status") in (400, 409, 422) else 1503 if outcome.get("retryable") else 1502
    else:
        number = NUMBER_OF.get(outcome.get("code"), NUMBER_OF.get(outcome["kind"], 1000))
    return {"code": number, "reason": outcome.get("message", "")}


def _convert(change: Any) -> None:
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(sa.select(items.c.id, items.c.error, items.c.details).where(
            items.c.id > after, items.c.status.in_(("error", "pending"))).order_by(items.c.id).limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            error = change(row.error)
            details = row.details
            if isinstance(details, dict) and "lastError" in details:
                details = {**details, "lastError": change(details["lastError"])}
            values = {name: value for name, value, before in (("error", error, row.error), ("details", details, row.details))
                      if value != before}
            if values:
                connection.execute(sa.update(items).where(items.c.id == row.id).values(**values))
        after = rows[-1].id


def upgrade() -> None:
    _convert(neutral)


def downgrade() -> None:
    _convert(fusion)
