"""The audit log through the APIs: entries for both families' writes with before/after values and the actor,
sign-ins, secrets never in it, scoping of GET /api/teamsvoice/v1/audit, and an entry exists exactly when its
change is committed."""

import json

import httpx
import pytest
from sqlalchemy import func, select

from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.domain.audit import context as audit_context
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.orgs.models import Reseller
from tests.api.fusion.support import BASE, PASSWORD, make_world
from tests.support.ctt import bearer, enterprise_body, reseller_catalogue, token_for

AUDIT = "/api/teamsvoice/v1/audit"


async def audit_of(client: httpx.AsyncClient, token: str, **params: str) -> list[dict]:
    response = await client.get(AUDIT, params={"limit": "500", **params}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()["entries"]


async def test_both_families_writes_are_audited_and_scoped(client: httpx.AsyncClient, live, organisation) -> None:
    # ConnecttoTeams: a sign-in, an enterprise created then edited.
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    created = await client.post("/reseller/newEnterprise", json=enterprise_body(login.reseller_id, "Acme", pbx=pbx[:1], sbc=sbc[:1]),
                                headers=bearer(token))
    assert created.status_code == 200, created.text
    enterprise_id = created.json()
    edit = enterprise_body(login.reseller_id, "Acme", pbx=pbx[:1], sbc=sbc[:1]) | {"enterpriseId": enterprise_id, "userLimit": 250}
    edited = await client.post("/reseller/editEnterprise", json=edit, headers=bearer(token))
    assert edited.status_code == 200, edited.text

    # Fusion: a tenant created and renamed by the reseller's Fusion login.
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant("reseller", name="Globex")
    renamed = await client.put(f"{BASE}/tenants/{tenant['uuid']}", headers=await world.as_("reseller"), json={"name": "Globex SA"})
    assert renamed.status_code == 200, renamed.text

    entries = await audit_of(client, token)
    by_action: dict[str, list[dict]] = {}
    for entry in entries:
        by_action.setdefault(entry["action"], []).append(entry)
    [ctt_sign_in] = [e for e in by_action["login.sign_in"] if e["family"] == "connecttoteams"]
    assert ctt_sign_in["actor"] == f"connecttoteams:{login.username}" and ctt_sign_in["source"] == "POST /oauth/token"
    assert ctt_sign_in["sourceIp"] == "127.0.0.1" and ctt_sign_in["requestId"]
    [made] = [e for e in by_action["enterprise.create"] if e["objectId"] == str(enterprise_id)]
    assert made["family"] == "connecttoteams" and made["actor"] == f"connecttoteams:{login.username}"
    assert made["source"] == "POST /reseller/newEnterprise" and made["after"]["enterprise_name"] == "Acme"
    assert made["customer"] == "Acme" and made["before"] is None
    [change] = [e for e in by_action["enterprise.update"] if e["objectId"] == str(enterprise_id)]
    assert change["before"]["user_limit"] == 100 and change["after"]["user_limit"] == 250
    assert change["source"] == "POST /reseller/editEnterprise"
    [fusion_made] = [e for e in by_action["tenant.create"] if e["after"]["uuid"] == tenant["uuid"]]
    assert fusion_made["family"] == "fusion" and fusion_made["actor"] == "fusion:reseller"
    assert fusion_made["source"] == "POST /api/v01/draas/{draas_instance}/tenants" and fusion_made["customer"] == "Globex"
    [fusion_change] = [e for e in by_action["tenant.update"] if e["objectId"] == fusion_made["objectId"]]
    assert (fusion_change["before"]["name"], fusion_change["after"]["name"]) == ("Globex", "Globex SA")
    assert any(e["family"] == "fusion" and e["actor"] == "fusion:reseller" for e in by_action["login.sign_in"])

    # Filters: action prefix, actor, tenant (customer), time range.
    assert {e["action"] for e in await audit_of(client, token, action="enterprise")} == {"enterprise.create", "enterprise.update"}
    assert all(e["customer"] == "Acme" for e in await audit_of(client, token, tenant="acm"))
    assert await audit_of(client, token, since="2999-01-01") == []
    assert (await client.get(AUDIT, params={"since": "yesterday"}, headers=bearer(token))).status_code == 400
    csv_answer = await client.get(AUDIT, params={"format": "csv", "action": "enterprise"}, headers=bearer(token))
    assert csv_answer.status_code == 200 and csv_answer.text.startswith("at,family,actor")
    assert csv_answer.text.count("enterprise.") == 2

    # Secrets never: no password, no hash, no token in any entry.
    dumped = json.dumps(entries)
    for secret in (login.password, login.client_secret, PASSWORD, token, "$argon2"):
        assert secret not in dumped

    # The other reseller sees none of it; an enterprise-level login is refused.
    other = await token_for(client, organisation.resellers[1])
    seen = await audit_of(client, other)
    assert not [e for e in seen if e["customer"] in ("Acme", "Globex", "Globex SA") or e["actor"].endswith(f":{login.username}")]
    assert (await client.get(AUDIT)).status_code == 401

    # Fusion provider logins read it too, scoped alike.
    fusion_seen = await client.get(AUDIT, params={"limit": "500"}, headers=await world.as_("reseller"))
    assert fusion_seen.status_code == 200, fusion_seen.text
    assert {e["id"] for e in fusion_seen.json()["entries"]} == {e["id"] for e in entries}
    fusion_other = await client.get(AUDIT, params={"limit": "500"}, headers=await world.as_("other-reseller"))
    assert fusion_other.status_code == 200 and not [e for e in fusion_other.json()["entries"]
                                                    if e["customer"] == "Acme" or e["objectId"] == fusion_made["objectId"]]


@pytest.fixture
async def sessions(live):  # type: ignore[no-untyped-def]
    engine = create_engine(live.settings.effective_database_url)
    yield session_factory(engine)
    await engine.dispose()


async def test_an_entry_exists_exactly_when_its_change_commits(sessions, organisation) -> None:
    reseller_id = organisation.resellers[0].reseller_id

    async def count() -> int:
        async with sessions() as session:
            return await session.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "reseller.update", AuditEntry.object_id == str(reseller_id))) or 0

    scope = audit_context.AuditScope(family=audit_context.CONSOLE, source="test", actor=audit_context.Actor("tester"))
    with audit_context.acting(scope):
        async with sessions() as session:
            (await session.get(Reseller, reseller_id)).name = "Renamed, then rolled back"
            await session.flush()
            await session.rollback()
        assert await count() == 0
        async with sessions() as session:
            (await session.get(Reseller, reseller_id)).name = "Renamed"
            await session.commit()
    assert await count() == 1
    async with sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "reseller.update"))
    assert entry.actor == "tester" and entry.family == "console"
    assert entry.before == {"name": organisation.resellers[0].name} and entry.after == {"name": "Renamed"}


def test_values_are_plain_json_with_secrets_masked() -> None:
    from datetime import datetime

    from teamsvoice.domain.audit.recorder import plain

    value = {"password_hash": "$argon2id$v=19$...", "sip_password_encrypted": "gAAAA", "name": "Acme", "empty_secret": None,
             "config": {"clientSecret": "s3cr3t", "items": [{"apiToken": "t0k3n", "port": 5060}]},
             "when": datetime(2026, 12, 1, 8, 30), "image": "i" * 5000}
    shown = plain(value)
    assert shown["password_hash"] == shown["sip_password_encrypted"] == "***" and shown["empty_secret"] is None
    assert shown["config"] == {"clientSecret": "***", "items": [{"apiToken": "***", "port": 5060}]}
    assert shown["name"] == "Acme" and shown["when"] == "2026-12-01T08:30:00"
    assert shown["image"].endswith("(5000 characters)") and len(shown["image"]) < 200
