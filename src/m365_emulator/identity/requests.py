"""Request plumbing shared by the identity endpoints: form bodies, tenant path segments, app lookup."""

from fastapi import Request

from ..store import Document, Transaction
from ..tenants import resolve_tenant

MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations"})


async def form_data(request: Request) -> dict[str, str]:
    """The URL-encoded body as plain strings (file parts are never expected here)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def tenant_for_segment(tx: Transaction, segment: str) -> Document | None:
    """The tenant a path names, or None for common/organizations (any tenant may sign in)."""
    if segment.lower() in MULTI_TENANT_SEGMENTS:
        return None
    return resolve_tenant(tx, segment)
