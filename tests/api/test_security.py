"""Issue 9: login guessing is throttled (both families, counters in the database), secrets are never cached,
HTML pages are hardened, /metrics obeys its setting, error reasons never echo the caller's input whole."""

import ipaddress
import logging
from datetime import timedelta

import httpx
import pytest

from teamsvoice.app import create_app
from teamsvoice.core.clock import utcnow
from teamsvoice.domain.security import throttle
from teamsvoice.settings import Settings
from tests.api.fusion.support import PASSWORD, make_world


async def _ctt_login(client: httpx.AsyncClient, login, password: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return await client.post("/oauth/token", auth=(login.client_id, login.client_secret),
                             data={"username": login.username, "password": password, "grant_type": "password"})


async def test_password_guessing_is_throttled_in_both_families(client: httpx.AsyncClient, live, organisation, caplog,  # type: ignore[no-untyped-def]
                                                                monkeypatch) -> None:
    caplog.set_level(logging.WARNING, logger="teamsvoice.security")
    free = live.settings.login_free_failures
    # Locks of a minute, on a clock the test moves: a loaded machine, slow to hash a password, cannot outlast a
    # lock between two logins, and the test need not wait for one to end.
    monkeypatch.setattr(live.settings, "login_lock_base_seconds", 60.0)
    ahead = timedelta()
    monkeypatch.setattr(throttle, "utcnow", lambda: utcnow() + ahead)
    victim, bystander = organisation.resellers
    for _ in range(free):
        assert (await _ctt_login(client, victim, "guess-Passw0rd")).status_code == 400
    locked = await _ctt_login(client, victim, victim.password)  # even the right password waits
    assert locked.status_code == 429 and locked.json()["error"] == "too_many_requests", locked.text
    assert int(locked.headers["Retry-After"]) >= 1 and locked.headers["Cache-Control"] == "no-store"
    assert (await _ctt_login(client, bystander, bystander.password)).status_code == 200  # another account is unaffected
    ahead += timedelta(seconds=int(locked.headers["Retry-After"]) + 1)
    assert (await _ctt_login(client, victim, victim.password)).status_code == 200  # the lock ends; success clears it
    assert (await _ctt_login(client, victim, "guess-Passw0rd")).status_code == 400  # counting starts again at one
    # An API client that cannot authenticate counts against the address only, never against the account it names
    # (it did: anyone could lock any login out with a made-up client id).
    for _ in range(free + 1):
        named = await client.post("/oauth/token", auth=("made-up-client", "made-up-secret"),
                                  data={"username": victim.username, "password": "x", "grant_type": "password"})
        assert named.status_code == 401 and named.json()["error"] == "invalid_client", named.text
    assert (await _ctt_login(client, victim, victim.password)).status_code == 200

    world = await make_world(client, live, organisation)
    body = {"username": "reseller", "password": "guess-Passw0rd"}
    for _ in range(free):
        assert (await client.post("/api/v01/auth/login", json=body)).status_code == 401
    locked = await client.post("/api/v01/auth/login", json=body | {"password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == 1029, locked.text
    assert int(locked.headers["Retry-After"]) >= 1
    assert (await client.post("/api/v01/auth/login", json={"username": "system", "password": PASSWORD})).status_code == 200
    ahead += timedelta(seconds=int(locked.headers["Retry-After"]) + 1)
    assert await world.login("reseller")

    events = [r.getMessage() for r in caplog.records if r.name == "teamsvoice.security"]
    assert any("login failed family=connecttoteams" in e for e in events), events
    assert any("login refused while locked family=fusion" in e for e in events), events
    assert not any("guess-Passw0rd" in e or PASSWORD in e for e in events)


async def _guess(client: httpx.AsyncClient, username: str, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    answer = await client.post("/api/v01/auth/login", json={"username": username, "password": "guess-Passw0rd"},
                               headers=headers)
    assert answer.status_code in (401, 429), answer.text  # a malformed header is no 500
    return answer.status_code


async def test_a_forwarded_for_header_from_an_untrusted_peer_is_ignored(client: httpx.AsyncClient, live, organisation,  # type: ignore[no-untyped-def]
                                                                       caplog, monkeypatch) -> None:
    """No trusted proxy (the default): the client is the TCP peer whatever X-Forwarded-For says. uvicorn believed the
    header from 127.0.0.1 (its default): a guesser on the host named a new address at each try and was never locked."""
    caplog.set_level(logging.WARNING, logger="teamsvoice.security")
    monkeypatch.setattr(live.settings, "login_address_free_failures", 3)
    monkeypatch.setattr(live.settings, "login_lock_base_seconds", 60.0)
    for n in range(3):  # a new account at each try: only the address counts up
        assert await _guess(client, f"nobody-{n}", f"203.0.113.{n}") == 401
    assert await _guess(client, "nobody-3", "203.0.113.3") == 429  # the peer, 127.0.0.1, is locked
    events = [r.getMessage() for r in caplog.records if r.name == "teamsvoice.security"]
    assert events and all("address=127.0.0.1 " in e for e in events), events
    page = await client.get("/console/login", headers={"X-Forwarded-Proto": "https"})
    assert page.status_code == 200 and "secure" not in page.headers["set-cookie"].lower(), page.headers["set-cookie"]


async def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_apart(client: httpx.AsyncClient, live,  # type: ignore[no-untyped-def]
                                                                           organisation, caplog, monkeypatch) -> None:
    """TEAMSVOICE_TRUSTED_PROXIES names the proxy: behind it, every client had the proxy's address, and about 30
    failed logins from anyone locked out every login of both families and the console."""
    caplog.set_level(logging.WARNING, logger="teamsvoice.security")
    monkeypatch.setattr(live.settings, "trusted_proxies", ["127.0.0.1/32"])
    monkeypatch.setattr(live.settings, "login_address_free_failures", 3)
    monkeypatch.setattr(live.settings, "login_lock_base_seconds", 60.0)
    names = iter(f"nobody-{n}" for n in range(100))
    for _ in range(3):  # client A behind the proxy; what stands left of it is A's own claim
        assert await _guess(client, next(names), "198.51.100.1, 203.0.113.1") == 401
    assert await _guess(client, next(names), "203.0.113.1") == 429
    assert await _guess(client, next(names), "203.0.113.2, 203.0.113.1") == 429  # a claim on the left changes nothing
    login = organisation.resellers[0]
    token = await client.post("/oauth/token", auth=(login.client_id, login.client_secret),
                              headers={"X-Forwarded-For": "203.0.113.1"},
                              data={"username": login.username, "password": login.password, "grant_type": "password"})
    assert token.status_code == 429, token.text  # the address's lock holds in the other family too
    assert await _guess(client, next(names), "203.0.113.2") == 401  # client B is counted apart
    assert await _guess(client, next(names), "203.0.113.2, 127.0.0.1") == 401  # a trusted hop is passed over
    token = await client.post("/oauth/token", auth=(login.client_id, login.client_secret),
                              headers={"X-Forwarded-For": "203.0.113.2"},
                              data={"username": login.username, "password": login.password, "grant_type": "password"})
    assert token.status_code == 200, token.text
    # A malformed header counts against the proxy that sent it: never a new address at each try (uvicorn took any
    # text for an address), never a 500.
    for malformed in ("not-an-address", "999.1.1.1", "[2001:db8::7"):
        assert await _guess(client, next(names), malformed) == 401
    assert await _guess(client, next(names), "") == 429
    events = [r.getMessage() for r in caplog.records if r.name == "teamsvoice.security"]
    assert any("address=203.0.113.2 " in e for e in events) and not any("198.51.100.1" in e for e in events), events
    # The scheme as the proxy reports it (the console's cookies are Secure behind https), and /metrics sees the client.
    page = await client.get("/console/login", headers={"X-Forwarded-Proto": "https"})
    assert page.status_code == 200 and "secure" in page.headers["set-cookie"].lower(), page.headers["set-cookie"]
    assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.2"})).status_code == 404
    assert (await client.get("/metrics")).status_code == 200


async def test_secrets_are_not_cached_and_pages_are_hardened(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    token = await _ctt_login(client, organisation.resellers[0], organisation.resellers[0].password)
    assert token.status_code == 200 and "no-store" in token.headers["Cache-Control"]
    await make_world(client, live, organisation)
    fusion = await client.post("/api/v01/auth/login", json={"username": "reseller", "password": PASSWORD})
    assert fusion.status_code == 200 and fusion.headers["Cache-Control"] == "no-store"
    assert fusion.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/docs", "/restricted/handleResponse?error=access_denied&state=x"):
        page = await client.get(path)
        assert page.headers["content-type"].startswith("text/html"), (path, page.status_code)
        assert page.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_error_reasons_quote_only_a_prefix_of_the_input(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]
    bearer = {"Authorization": f"Bearer {(await _ctt_login(client, login, login.password)).json()['access_token']}"}
    huge = "A" * 200_000
    answer = await client.post("/enterprise/getActionItemUrl", headers=bearer,
                               json={"actionType": huge, "enterpriseName": "x", "redirectUrl": "http://127.0.0.1:9/x"})
    assert answer.status_code == 400 and len(answer.text) < 1000, answer.text[:300]


@pytest.mark.parametrize(("access", "peer", "headers", "status"), [
    ("loopback", "127.0.0.1", {}, 200), ("loopback", "52.112.0.10", {}, 404), ("off", "127.0.0.1", {}, 404),
    ("token", "52.112.0.10", {"Authorization": "Bearer metrics-secret"}, 200),
    ("token", "127.0.0.1", {"Authorization": "Bearer wrong"}, 401), ("token", "127.0.0.1", {}, 401),
])
async def test_metrics_obey_their_setting(tmp_path, access: str, peer: str, headers: dict, status: int) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, metrics_access=access, metrics_token="metrics-secret")  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=create_app(settings, jobs_role=None), client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://teamsvoice.test") as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == status, response.text
    assert ("teamsvoice_http_requests_total" in response.text) == (status == 200)


async def test_unknown_usernames_cost_the_same_check_in_both_families(client: httpx.AsyncClient, live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Timing must not tell which usernames exist: an unknown one is checked against a decoy hash too."""
    from teamsvoice.core import security

    checked: list[str] = []
    real = security.verify_secret
    monkeypatch.setattr(security, "verify_secret", lambda value, hashed: checked.append(hashed) or real(value, hashed))
    login = organisation.resellers[0]
    answer = await client.post("/oauth/token", auth=(login.client_id, login.client_secret),
                               data={"username": "nobody-here", "password": "guess-Passw0rd", "grant_type": "password"})
    assert answer.status_code == 400 and len(checked) == 2  # the client's secret, then the (decoy) password
    answer = await client.post("/oauth/token", auth=("no-such-client", "guess"),
                               data={"username": login.username, "password": "x", "grant_type": "password"})
    assert answer.status_code in (400, 401) and len(checked) == 3
    answer = await client.post("/api/v01/auth/login", json={"username": "nobody-here", "password": "guess-Passw0rd"})
    assert answer.status_code == 401 and len(checked) == 4


# --- webhook destinations: resolved at delivery time, internal addresses refused, connection pinned ---------

INTERNAL = ["127.0.0.1", "169.254.169.254", "10.1.2.3", "172.16.0.9", "192.168.1.1", "100.64.0.1", "0.0.0.0",
            "224.0.0.1", "::1", "fd00::1", "fe80::1", "::", "ff02::1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"]


def _pretend(monkeypatch, answers: dict[str, list[list[str]]]) -> list[str]:  # type: ignore[no-untyped-def]
    """The resolver answers each name with the next of its answers (the last one repeats); returns the names asked."""
    from teamsvoice.core import destinations
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]
    monkeypatch.setattr(destinations, "resolve", resolve)
    return asked


@pytest.mark.parametrize("address", INTERNAL)
def test_a_webhook_host_resolving_to_an_internal_address_is_refused(monkeypatch, address: str) -> None:  # type: ignore[no-untyped-def]
    from teamsvoice.core import destinations
    _pretend(monkeypatch, {"hooks.partner.example": [[address]], "mixed.partner.example": [["52.112.0.10", address]]})
    for url in ("https://hooks.partner.example/x", "https://mixed.partner.example/x"):
        with pytest.raises(destinations.RefusedDestination) as refused:
            destinations.check_destination(url, allow_internal=False)
        assert "resolves to a" in refused.value.message and "public addresses only" in refused.value.message
    literal = f"https://[{address}]/x" if ":" in address else f"https://{address}/x"
    with pytest.raises(destinations.RefusedDestination):
        destinations.check_destination(literal, allow_internal=False)
    # The operator's allowance (the embedded default, the suite's loopback receivers) lets it through.
    assert destinations.check_destination("https://hooks.partner.example/x", allow_internal=True).address == str(ipaddress.ip_address(address))


def test_a_public_webhook_host_is_accepted_and_unresolvable_is_transient(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from teamsvoice.core import destinations
    _pretend(monkeypatch, {"hooks.partner.example": [["52.112.0.10", "2606:4700::1111"]]})
    checked = destinations.check_destination("https://hooks.partner.example:8443/x?a=1", allow_internal=False)
    assert (checked.address, checked.pinned_url, checked.host_header) == (
        "52.112.0.10", "https://52.112.0.10:8443/x?a=1", "hooks.partner.example:8443")

    def fails(host: str, port: int) -> list[str]:
        raise OSError("no such name")
    monkeypatch.setattr(destinations, "resolve", fails)
    with pytest.raises(httpx.ConnectError):  # retried later by the delivery loop, not refused for good
        destinations.check_destination("https://gone.partner.example/x", allow_internal=False)


def test_the_connection_goes_to_the_address_checked(monkeypatch, receiver) -> None:  # type: ignore[no-untyped-def]
    """DNS rebinding: the first answer is checked and used; a later, different answer is never asked for."""
    from teamsvoice.core import destinations
    port = int(receiver.url.rsplit(":", 1)[1])
    asked = _pretend(monkeypatch, {"rebind.partner.example": [["127.0.0.1"], ["169.254.169.254"]]})
    receiver.reset()
    with httpx.Client(timeout=5) as http:
        response = destinations.post(http, f"http://rebind.partner.example:{port}/hook", allow_internal=True,
                                     content=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and asked == ["rebind.partner.example"]
    assert receiver.received[-1]["path"] == "/hook"
    assert receiver.received[-1]["headers"]["host"] == f"rebind.partner.example:{port}"


async def test_deliveries_resolve_and_refuse_internal_hosts(live, organisation, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Both delivery steps (consent webhooks, drift events) refuse a registered name that resolves to an internal
    address unless the deployment allows it; allowed, they connect to the checked address."""
    import anyio
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from teamsvoice.domain.consent.models import WebhookDelivery
    from teamsvoice.domain.consent.service import WEBHOOK_PURPOSE
    from teamsvoice.domain.orgs.models import Enterprise, Reseller
    from teamsvoice.domain.voice_state import drift
    from teamsvoice.domain.voice_state.models import DriftDelivery, DriftWebhook
    from teamsvoice.domain.voice_state.workflows import post_drift_event
    from teamsvoice.jobs.runtime import job_context
    from teamsvoice.jobs.webhooks import post_webhook

    ctx = job_context()
    port = int(receiver.url.rsplit(":", 1)[1])
    _pretend(monkeypatch, {"metadata.partner.example": [["169.254.169.254"]], "hooks.partner.example": [["127.0.0.1"]]})
    reseller_id = organisation.resellers[0].reseller_id
    with Session(ctx.engine) as session, session.begin():
        reseller = session.get(Reseller, reseller_id)
        reseller.registered_redirect_urls = ["https://metadata.partner.example/"]
        enterprise = Enterprise(reseller_id=reseller_id, enterprise_name="Destinations")
        session.add(enterprise)
        session.flush()
        consent = WebhookDelivery(enterprise_id=enterprise.id, url="https://metadata.partner.example/consents",
                                  payload_encrypted=ctx.keyring.encrypt('{"token": "x"}', purpose=WEBHOOK_PURPOSE))
        hook = DriftWebhook(reseller_id=reseller_id, url=f"http://hooks.partner.example:{port}/drift",
                            secret_encrypted=ctx.keyring.encrypt("s3cret", purpose=drift.SECRET_PURPOSE))
        session.add_all([consent, hook])
        session.flush()
        refused_event = DriftDelivery(webhook_id=hook.id, body='{"timestamp": 1, "n": 1}')
        allowed_event = DriftDelivery(webhook_id=hook.id, body='{"timestamp": 2, "n": 2}')
        session.add_all([refused_event, allowed_event])
        session.flush()
        ids = consent.id, refused_event.id, allowed_event.id
    receiver.reset()
    monkeypatch.setattr(ctx.settings, "allow_loopback_redirects", False)
    assert await anyio.to_thread.run_sync(post_webhook, ids[0]) is True
    assert await anyio.to_thread.run_sync(post_drift_event, ids[1]) is True
    monkeypatch.setattr(ctx.settings, "allow_loopback_redirects", True)
    assert await anyio.to_thread.run_sync(post_drift_event, ids[2]) is True
    with Session(ctx.engine) as session:
        rows = {row.id: row for row in session.scalars(select(WebhookDelivery))}
        events = {row.id: row for row in session.scalars(select(DriftDelivery))}
        assert (rows[ids[0]].status, rows[ids[0]].attempts) == ("refused", 0)
        assert "link-local address (169.254.169.254)" in rows[ids[0]].last_error
        assert (events[ids[1]].status, events[ids[1]].attempts) == ("refused", 0)
        assert "loopback address" in events[ids[1]].last_error
        assert events[ids[2]].status == "delivered"
    assert [r["body"]["n"] for r in receiver.received] == [2]
    assert receiver.received[0]["headers"]["host"] == f"hooks.partner.example:{port}"


def test_https_deliveries_keep_the_host_name_for_tls(monkeypatch, live) -> None:  # type: ignore[no-untyped-def]
    """Pinned to the checked address, an https delivery still sends the host name as TLS server name and checks
    the certificate against it: the emulator's certificate (localhost, 127.0.0.1) is accepted for `localhost`
    and refused for another name resolving to the same address."""
    from teamsvoice.core import destinations
    port = int(live.emulator.url.rsplit(":", 1)[1])
    _pretend(monkeypatch, {"localhost": [["127.0.0.1"]], "other.partner.example": [["127.0.0.1"]]})
    with httpx.Client(verify=str(live.emulator.ca_cert_path), timeout=10) as http:
        answered = destinations.post(http, f"https://localhost:{port}/v1.0/organization", allow_internal=True,
                                     content=b"{}", headers={"Content-Type": "application/json"})
        assert answered.status_code in (401, 405)  # TLS passed: Graph answers (no token)
        with pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname"):
            destinations.post(http, f"https://other.partner.example:{port}/v1.0/organization", allow_internal=True,
                              content=b"{}", headers={"Content-Type": "application/json"})


async def test_a_drift_webhook_that_deliveries_would_refuse_is_refused_when_registered(client: httpx.AsyncClient, live,  # type: ignore[no-untyped-def]
                                                                                         organisation, monkeypatch) -> None:
    """With internal destinations not allowed, registering a drift webhook at an internal address answered 200 and a
    signing secret, though every delivery to it would be refused (only literal loopback was refused at once)."""
    from teamsvoice.core import destinations
    from tests.support.ctt import bearer, token_for

    monkeypatch.setattr(live.settings, "allow_loopback_redirects", False)
    monkeypatch.setattr(destinations, "resolve", lambda host, port: {
        "hooks.partner.example": ["93.184.216.34"], "intranet.partner.example": ["10.1.2.3"]}.get(host, []))
    token = bearer(await token_for(client, organisation.resellers[0]))
    for url, kind in (("https://169.254.169.254/latest/meta-data", "link-local"), ("https://10.0.0.1/x", "private"),
                      ("https://[::ffff:127.0.0.1]:8443/x", "loopback"), ("https://0.0.0.0/", "unspecified"),
                      ("https://intranet.partner.example/hook", "private")):
        refused = await client.put("/api/teamsvoice/v1/webhook", headers=token, json={"url": url})
        assert refused.status_code == 400 and f"a {kind} address" in refused.json()["message"], (url, refused.text)
    accepted = await client.put("/api/teamsvoice/v1/webhook", headers=token, json={"url": "https://hooks.partner.example/drift"})
    assert accepted.status_code == 200 and accepted.json()["secret"], accepted.text
