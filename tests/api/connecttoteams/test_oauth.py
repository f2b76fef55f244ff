"""POST /oauth/token and bearer-token checks (spec 001)."""

from datetime import timedelta

import httpx
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import sync_url
from teamsvoice.domain.orgs.models import OAuthToken
from tests.support.ctt import bearer, token_for


async def test_password_grant_gives_a_working_token(client: httpx.AsyncClient, organisation) -> None:
    login = organisation.resellers[0]
    response = await client.post(
        "/oauth/token", auth=(login.client_id, login.client_secret),
        data={"username": login.username, "password": login.password, "grant_type": "password"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0 and body["refresh_token"]
    me = await client.put("/reseller/getAuthenticatedUser", content=login.username, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["resellerId"] == login.reseller_id and me.json()["type"] == "RESELLER"


async def test_bad_client_and_bad_user_fail_as_oauth_errors(client: httpx.AsyncClient, organisation) -> None:
    login = organisation.resellers[0]
    form = {"username": login.username, "password": login.password, "grant_type": "password"}
    wrong_secret = await client.post("/oauth/token", auth=(login.client_id, "nope"), data=form)
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    no_client = await client.post("/oauth/token", data=form)
    assert no_client.status_code == 401 and no_client.json()["error"] == "unauthorized"
    wrong_password = await client.post("/oauth/token", auth=(login.client_id, login.client_secret), data=form | {"password": "x"})
    assert wrong_password.status_code == 400
    assert wrong_password.json() == {"error": "invalid_grant", "error_description": "Bad credentials"}
    # Another reseller's user with this reseller's client: refused the same way.
    other = organisation.resellers[1]
    crossed = await client.post("/oauth/token", auth=(login.client_id, login.client_secret),
                                data={"username": other.username, "password": other.password, "grant_type": "password"})
    assert crossed.status_code == 400 and crossed.json()["error"] == "invalid_grant"
    unsupported = await client.post("/oauth/token", auth=(login.client_id, login.client_secret), data={"grant_type": "implicit"})
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"


async def test_refresh_token_rotates(client: httpx.AsyncClient, organisation) -> None:
    login = organisation.master
    auth = (login.client_id, login.client_secret)
    first = (await client.post("/oauth/token", auth=auth, data={"username": login.username, "password": login.password,
                                                                 "grant_type": "password"})).json()
    refreshed = await client.post("/oauth/token", auth=auth, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    new_access = refreshed.json()["access_token"]
    assert (await client.put("/reseller/getAuthenticatedUser", headers=bearer(new_access))).status_code == 200
    reused = await client.post("/oauth/token", auth=auth, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


async def test_tokens_expire_and_are_stored_only_as_digests(client: httpx.AsyncClient, organisation, live) -> None:
    token = await token_for(client, organisation.resellers[0])
    engine = create_engine(sync_url(live.settings.effective_database_url))
    with Session(engine) as session:
        stored = session.scalars(select(OAuthToken.token_digest)).all()
        assert token not in stored and all(len(d) == 64 for d in stored)
        session.execute(update(OAuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    engine.dispose()
    expired = await client.put("/reseller/getAuthenticatedUser", headers=bearer(token))
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"


async def test_missing_or_garbage_bearer_is_401(client: httpx.AsyncClient, organisation) -> None:
    assert (await client.get("/reseller/getResellers/1")).status_code == 401
    garbage = await client.get("/reseller/getResellers/1", headers=bearer("garbage"))
    assert garbage.status_code == 401 and garbage.json()["error"] == "invalid_token"


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient, organisation) -> None:
    await client.get("/reseller/getResellers/987654321")
    body = (await client.get("/metrics")).text
    assert 'route="/reseller/getResellers/{masterResellerId}"' in body
    assert "/reseller/getResellers/987654321" not in body  # raw paths (ids, UPNs) never become label values


async def test_scopes_are_checked_and_client_failures_challenge_basic(client: httpx.AsyncClient, organisation) -> None:
    """scope=admin was granted 'read write' in silence; OAuth answers invalid_scope for a scope it does not know.
    A client that failed to authenticate was challenged with Bearer; RFC 6749 5.2 wants the client's scheme, Basic."""
    login = organisation.resellers[0]
    form = {"username": login.username, "password": login.password, "grant_type": "password"}
    auth = (login.client_id, login.client_secret)
    for scope in ("admin", "read admin", "READ"):
        refused = await client.post("/oauth/token", auth=auth, data=form | {"scope": scope})
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope", refused.text
        assert "read" in refused.json()["error_description"], refused.text
    for scope in ("read", "write", "read write", "write  read"):
        granted = await client.post("/oauth/token", auth=auth, data=form | {"scope": scope})
        assert granted.status_code == 200 and granted.json()["scope"] == "read write", granted.text
    wrong_secret = await client.post("/oauth/token", auth=(login.client_id, "nope"), data=form)
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    assert wrong_secret.headers["WWW-Authenticate"].startswith("Basic realm="), wrong_secret.headers
    no_client = await client.post("/oauth/token", data=form)
    assert no_client.status_code == 401 and no_client.headers["WWW-Authenticate"].startswith("Basic realm=")
    # A bearer token refused is still challenged as Bearer.
    garbage = await client.get("/reseller/getResellers/1", headers=bearer("garbage"))
    assert garbage.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"'), garbage.headers
