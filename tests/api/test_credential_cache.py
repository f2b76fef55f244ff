"""The per-process cache of verified bearer tokens (core/credential_cache.py), on both backends: a token verified
once is not looked up again while the TTL runs, TTL 0 looks every request up as before, and a revocation, a
disabled login or a role taken away in this process is refused at the next request."""

import asyncio
from typing import Any

import httpx
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from teamsvoice.core.credential_cache import HOLD_SECONDS
from teamsvoice.core.db import sync_url
from teamsvoice.core.security import token_digest
from teamsvoice.domain.fusion.models import FusionUser
from teamsvoice.domain.orgs.models import OAuthToken, PortalUser
from tests.api.fusion.support import BASE, make_world
from tests.support.ctt import bearer, token_for
from tests.support.database import counted_app


def app_with_cache(live: Any, seconds: float) -> Any:
    """The app with the cache's TTL set, in process, and the count of statements it sent."""
    return counted_app(live, credential_cache_seconds=seconds)


async def statements_of(client: httpx.AsyncClient, sent: list[int], path: str, headers: dict[str, str]) -> tuple[int, int]:
    before = sent[0]
    response = await client.get(path, headers=headers)
    return response.status_code, sent[0] - before


def write(live: Any, statement: Any) -> None:
    """A committed change made in this process, outside the app's own engine (as a job step or the console)."""
    engine = create_engine(sync_url(live.settings.effective_database_url))
    try:
        with Session(engine) as session:
            session.execute(statement)
            session.commit()
    finally:
        engine.dispose()


async def test_a_verified_token_is_not_looked_up_again_and_ttl_zero_looks_up_every_time(live, organisation) -> None:
    path = f"/reseller/getResellers/{organisation.master.reseller_id}"
    async with app_with_cache(live, 30) as (client, sent):
        headers = bearer(await token_for(client, organisation.master))
        first, second = await statements_of(client, sent, path, headers), await statements_of(client, sent, path, headers)
        assert first == (200, 2) and second == (200, 1)  # the token and the read, then the read alone
    async with app_with_cache(live, 0) as (client, sent):
        headers = bearer(await token_for(client, organisation.master))
        first, second = await statements_of(client, sent, path, headers), await statements_of(client, sent, path, headers)
        assert first == (200, 2) and second == (200, 2)


async def test_a_revoked_token_or_disabled_user_is_refused_at_once(live, organisation) -> None:
    path = f"/reseller/getResellers/{organisation.master.reseller_id}"
    other_path = f"/reseller/getEnterprisesForReseller/{organisation.resellers[0].reseller_id}"
    async with app_with_cache(live, 60) as (client, sent):
        token, other = await token_for(client, organisation.master), await token_for(client, organisation.resellers[0])
        for url, headers in ((path, bearer(token)), (other_path, bearer(other))):
            assert (await statements_of(client, sent, url, headers))[0] == 200
            assert await statements_of(client, sent, url, headers) == (200, 1)  # kept
        write(live, update(OAuthToken).where(OAuthToken.token_digest == token_digest(token)).values(revoked=True))
        revoked = await client.get(path, headers=bearer(token))
        assert revoked.status_code == 401 and revoked.json()["error"] == "invalid_token"

        await asyncio.sleep(HOLD_SECONDS)  # after a change nothing is kept for a moment (core/credential_cache.py)
        assert (await statements_of(client, sent, other_path, bearer(other)))[0] == 200
        assert await statements_of(client, sent, other_path, bearer(other)) == (200, 1)  # kept again
        write(live, update(PortalUser).where(PortalUser.username == organisation.resellers[0].username).values(active=False))
        assert (await client.get(other_path, headers=bearer(other))).status_code == 401


async def test_a_fusion_role_taken_away_or_a_logout_is_seen_at_once(live, organisation) -> None:
    async with app_with_cache(live, 60) as (client, sent):
        world = await make_world(client, live, organisation)
        reseller, distributor = await world.as_("reseller"), await world.as_("distributor")
        for headers in (reseller, distributor):
            assert (await statements_of(client, sent, f"{BASE}/tenants", headers))[0] == 200
            assert (await statements_of(client, sent, f"{BASE}/tenants", headers)) == (200, 1)  # kept
        write(live, update(FusionUser).where(FusionUser.username == "reseller").values(permissions=[]))
        refused = await client.get(f"{BASE}/tenants", headers=reseller)
        assert refused.status_code == 403, refused.text
        assert (await client.get("/api/v01/auth/logout", headers=distributor)).status_code == 200
        assert (await client.get(f"{BASE}/tenants", headers=distributor)).status_code == 401
