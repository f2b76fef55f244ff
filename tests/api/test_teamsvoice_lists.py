"""teamsvoice's own lists page (api/teamsvoice/paging.py): GET /audit, /drift and /numbers/reconciliation answer a
page at a time, `limit` a page, the next one at the `cursor` the page before answered (`next`, `Link: rel="next"`);
the pages together hold every row exactly once, rows recorded meanwhile included (keyset: an audit page starts next to
an entry's time and id, not at an offset); a cursor changed, made up or sent with other filters is a 400 naming it."""

import re
import uuid
from datetime import timedelta

import httpx

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import UpstreamError
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.voice_state import numbers
from teamsvoice.domain.voice_state.models import DriftEvent
from tests.support.ctt import bearer, token_for
from tests.support.database import add_customer, in_session
from tests.unit.voice_fakes import FakeTenantVoice

API = "/api/teamsvoice/v1"


def _link(response: httpx.Response) -> str | None:
    found = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("link", ""))
    return found.group(1) if found else None


async def _walk(client: httpx.AsyncClient, token: str, path: str, params: dict[str, str],
                between=None) -> list[httpx.Response]:  # type: ignore[no-untyped-def]
    """Every page of a list, following each page's Link header (and checking it says what `next` says)."""
    pages = [await client.get(path, params=params, headers=bearer(token))]
    while True:
        assert pages[-1].status_code == 200, pages[-1].text
        body, following = pages[-1].json(), _link(pages[-1])
        if isinstance(body, dict):
            assert (following is None) == (body["next"] is None)
            if following is not None:
                assert httpx.URL(following).params["cursor"] == body["next"]
        if following is None:
            return pages
        assert len(pages) < 50, "the pages never end"
        if between is not None:
            await between(len(pages))
        pages.append(await client.get(following, headers=bearer(token)))


async def test_audit_pages_hold_every_entry_once(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]
    token = await token_for(client, login)
    action = f"test.paging{uuid.uuid4().hex[:8]}"
    now = utcnow().replace(microsecond=0)

    async def record(session, ages: list[int]) -> list[int]:  # type: ignore[no-untyped-def]
        rows = [AuditEntry(at=now - timedelta(seconds=age), family="system", actor="paging test", action=action,
                           aggregate="test", owner_reseller_id=login.reseller_id) for age in ages]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]

    # Seven entries, three of them recorded in the same second (ties are ordered by id).
    recorded = await in_session(live, lambda session: record(session, [50, 40, 30, 30, 30, 20, 10]))

    async def one_more(_pages: int) -> None:  # recorded while the client pages: newer than every page after the first
        await in_session(live, lambda session: record(session, [0]))

    pages = await _walk(client, token, f"{API}/audit", {"action": action, "limit": "3"}, between=one_more)
    bodies = [page.json() for page in pages]
    seen = [entry["id"] for body in bodies for entry in body["entries"]]
    # Each once, none twice, newest first (those of one second: the later recorded first); none recorded meanwhile.
    assert seen == list(reversed(recorded)), (seen, recorded)
    assert [(b["total"], b["offset"], b["limit"], len(b["entries"])) for b in bodies] == [(7, 0, 3, 3), (7, 3, 3, 3),
                                                                                          (7, 6, 3, 1)]

    # A cursor made up, changed, or sent with other filters or with an offset: 400 naming it.
    cursor = bodies[0]["next"]
    for params, named in (({"action": action, "cursor": "not-a-cursor"}, "cursor"),
                          ({"action": action, "cursor": cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BA")}, "cursor"),
                          ({"action": action + "x", "cursor": cursor}, "cursor"),
                          ({"action": action, "cursor": cursor, "offset": "3"}, "offset"),
                          ({"action": action, "limit": "0"}, "limit"), ({"action": action, "limit": "501"}, "limit")):
        refused = await client.get(f"{API}/audit", params=params, headers=bearer(token))
        assert refused.status_code == 400 and named in refused.json()["message"], (params, refused.text)
    # `offset` still pages as it did (its page answers the cursor of the next one).
    by_offset = await client.get(f"{API}/audit", params={"action": action, "offset": "2", "limit": "2"}, headers=bearer(token))
    assert by_offset.status_code == 200 and by_offset.json()["offset"] == 2 and by_offset.json()["total"] == 7 + 2
    assert [e["id"] for e in by_offset.json()["entries"]] == [recorded[-1], recorded[-2]]  # after the two new ones


async def test_drift_pages_hold_every_event_once(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]
    token = await token_for(client, login)
    tenant_id = str(uuid.uuid4())
    now = utcnow()

    async def events(session) -> tuple[list[int], list[int]]:  # type: ignore[no-untyped-def]
        enterprise_id, _ = await add_customer(session, login.reseller_id, f"Drifting {tenant_id[:8]}")
        (await session.get(Enterprise, enterprise_id)).tenant_id = tenant_id
        rows = [DriftEvent(enterprise_id=enterprise_id, difference_id=f"number:+3220000000{i}", kind="number",
                           action="remove", drift="number_assigned_by_hand", detail="by hand", difference={},
                           first_seen_at=now, last_seen_at=now, resolved_at=now if i in (1, 4) else None) for i in range(7)]
        session.add_all(rows)
        await session.flush()
        return [r.id for r in rows if r.resolved_at is None], [r.id for r in rows]

    open_ids, all_ids = await in_session(live, events)
    for params, expected in (({"tenant": tenant_id, "limit": "2"}, open_ids),
                             ({"tenant": tenant_id, "all": "true", "limit": "3"}, all_ids)):
        pages = await _walk(client, token, f"{API}/drift", params)
        assert all(isinstance(page.json(), list) for page in pages)  # still a JSON array
        assert len(pages) == -(-len(expected) // int(params["limit"])), params  # `limit` a page
        assert [e["eventId"] for page in pages for e in page.json()] == expected, params
        assert [len(page.json()) for page in pages] == [int(params["limit"])] * (len(pages) - 1) + [len(pages[-1].json())]
    whole = await client.get(f"{API}/drift", params={"tenant": tenant_id}, headers=bearer(token))
    assert [e["eventId"] for e in whole.json()] == open_ids and "link" not in whole.headers  # one page: no next

    first = await client.get(f"{API}/drift", params={"tenant": tenant_id, "limit": "2"}, headers=bearer(token))
    cursor = httpx.URL(_link(first)).params["cursor"]
    for params in ({"tenant": tenant_id, "cursor": "x" * 40}, {"tenant": tenant_id, "all": "true", "cursor": cursor},
                   {"cursor": cursor}):
        refused = await client.get(f"{API}/drift", params=params, headers=bearer(token))
        assert refused.status_code == 400 and "cursor" in refused.json()["message"], (params, refused.text)
    refused = await client.get(f"{API}/drift", params={"limit": "0"}, headers=bearer(token))
    assert refused.status_code == 400 and "limit" in refused.json()["message"], refused.text
    # Another reseller's token does not continue this one's pages.
    other = await token_for(client, organisation.resellers[1])
    refused = await client.get(f"{API}/drift", params={"tenant": tenant_id, "limit": "2", "cursor": cursor}, headers=bearer(other))
    assert refused.status_code == 400 and "cursor" in refused.json()["message"], refused.text


async def test_reconciliation_pages_hold_every_finding_once(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """Across tenants, a page ending inside a tenant or with it; a tenant Microsoft does not answer for is named on
    the page that read it. (Teams here is the tests' in-memory tenant; the API's cursor is checked below.)"""
    login = organisation.resellers[0]
    tenants = {f"{name}-{uuid.uuid4()}"[:36]: name for name in ("three", "none", "lost", "two")}
    recorded = {"three": ["+32210000001", "+32210000002", "+32210000003"], "two": ["+32210000011", "+32210000012"]}
    teams = {tenant: FakeTenantVoice() for tenant in tenants}

    async def records(session) -> dict[str, int]:  # type: ignore[no-untyped-def]
        ids = {}
        for tenant, name in tenants.items():
            enterprise_id, _ = await add_customer(session, login.reseller_id, f"Numbers {tenant}")
            (await session.get(Enterprise, enterprise_id)).tenant_id = tenant
            ids[name] = enterprise_id
            for i, number in enumerate(recorded.get(name, [])):  # a recorded number Teams does not hold: a finding
                session.add(TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name=f"u{i}@{name}.example",
                                           phone_number=number, calling_enabled=True))
        await session.flush()
        return ids

    ids = await in_session(live, records)

    class Lost(FakeTenantVoice):
        async def voice_users(self):  # type: ignore[no-untyped-def]
            raise UpstreamError("Microsoft did not answer", retryable=True, status=503)

    teams.update({t: Lost() for t, name in tenants.items() if name == "lost"})
    scope = Principal(portal_user_id=0, username="t", user_type="RESELLER", reseller_id=login.reseller_id,
                      enterprise_id=None, reseller_scope=frozenset({login.reseller_id}))
    for limit in (1, 2, 3, 5, 100):
        seen, lost, start = [], [], None
        for _ in range(20):
            async def page(session, start=start):  # type: ignore[no-untyped-def]
                return await numbers.findings_page(session, [scope], teams.__getitem__, start, limit)
            found = await in_session(live, page)
            assert len(found.findings) <= limit
            seen += [(f.tenant_id, f.number) for f in found.findings]
            lost += [tenant for tenant, _error in found.unreachable]
            if (start := found.following) is None:
                break
        expected = [(t, number) for t, name in sorted(tenants.items(), key=lambda item: ids[item[1]])
                    for number in recorded.get(name, [])]
        assert seen == expected, (limit, seen)
        assert [tenants[t] for t in lost] == ["lost"], limit

    # Through the API: the page's shape, and its cursor refused when made up.
    token = await token_for(client, login)
    answered = await client.get(f"{API}/numbers/reconciliation", params={"limit": "1", "cursor": "made.up"},
                                headers=bearer(token))
    assert answered.status_code == 400 and "cursor" in answered.json()["message"], answered.text
    refused = await client.get(f"{API}/numbers/reconciliation", params={"limit": "501"}, headers=bearer(token))
    assert refused.status_code == 400 and "limit" in refused.json()["message"], refused.text
