"""Issue 14: the SBC side of the PBX connector on a real SIP server. Kamailio (deploy/kamailio/kamailio.cfg,
TLS off) and sipp playing the customer's PBX registrar (digest auth) run on loopback; the PBX location and
user are configured through the ConnecttoTeams API and teamsvoice's durable SBC sync drives Kamailio."""

import asyncio
import json
import socket
import sqlite3
import ssl
import time
import uuid
from contextlib import closing

import pytest
from dbos import DBOS
from typer.testing import CliRunner

from teamsvoice.cli import app

from tests.e2e.test_calling import enterprise_token, fresh_numbers, user_body
from tests.support.calling import licensed_users
from tests.support.ctt import bearer, token_for
from tests.support.onboarding import Onboarding
from teamsvoice.domain.sbc.ports import DesiredSbc, Registration, RouteTarget, SbcUnavailable
from teamsvoice.sbc.kamailio import KamailioSbc
from tests.support.sip import (
    Kamailio, SipMessage, SippRegistrar, UdpPeer, digest_valid, missing, module_missing, self_signed_tls_cfg,
    tls_module_missing,
)

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"SBC tests need Kamailio and sipp: {missing()}")

FQDN = "sbc.test.example"


@pytest.fixture
def kamailio(tmp_path):
    server = Kamailio(tmp_path, FQDN).start()
    yield server
    server.stop()


@pytest.fixture
def attached(live, kamailio, monkeypatch):
    """The live server (API and job engine) with the SBC attached, for this test only."""
    monkeypatch.setattr(live.settings, "sbc_kamailio_db_url", kamailio.db_url)
    monkeypatch.setattr(live.settings, "sbc_kamailio_rpc_url", kamailio.rpc_url)
    monkeypatch.setattr(live.settings, "sbc_microsoft_proxies", ["sip:127.0.0.1:5999"])  # loopback only
    monkeypatch.setattr(live.settings, "sbc_retry_max_delay_seconds", 0.5)
    return kamailio


def is_register(message: SipMessage) -> bool:
    return message.direction == "received" and message.first_line.startswith("REGISTER ")


def authorized_register(user: str, password: str, expires: str | None = None):  # noqa: ANN201
    def match(message: SipMessage) -> bool:
        return (is_register(message) and message.header("Authorization") is not None
                and (expires is None or message.header("Expires") == expires) and digest_valid(message, user, password))
    return match


async def registration(client, token: str, tenant_id: str) -> dict:
    response = await client.post("/pbx/getSBCRegistrationsForEnterprise",
                                 headers=bearer(token) | {"Content-Type": "application/json"}, content=tenant_id)
    assert response.status_code == 200, response.text
    return response.json()


async def wait_registered(client, token: str, tenant_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        report = await registration(client, token, tenant_id)
        if report["users"] and all(u["registration"] == "REGISTERED" and u["upToDate"] for u in report["users"]):
            return report
        assert time.monotonic() < deadline, report
        time.sleep(0.1)


@pytest.fixture
def onboarding(client, live, organisation, receiver):
    receiver.reset()
    return Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])


def cli_status(live, kamailio: Kamailio | None) -> tuple[int, str]:
    env = {"TEAMSVOICE_DATABASE_URL": live.settings.effective_database_url,
           "TEAMSVOICE_SBC_KAMAILIO_DB_URL": kamailio.db_url if kamailio else "",
           "TEAMSVOICE_SBC_KAMAILIO_RPC_URL": kamailio.rpc_url if kamailio else ""}
    result = CliRunner().invoke(app, ["sbc", "status", "--json", "--data-dir", str(live.settings.data_dir)], env=env)
    return result.exit_code, result.output


async def test_pbx_user_registers_through_kamailio(onboarding, live, organisation, attached, tmp_path, monkeypatch) -> None:
    client, kamailio = onboarding.client, attached
    await onboarding.register()
    with monkeypatch.context() as detached:  # without an SBC the product works and says none is attached
        detached.setattr(live.settings, "sbc_kamailio_rpc_url", None)
        report = await registration(client, onboarding.token, onboarding.tenant["tenantId"])
        assert report["sbcAttached"] is False and report["message"].startswith("No SBC is attached"), report
        code, output = await asyncio.to_thread(cli_status, live, None)  # (the command runs its own event loop)
        assert code == 0 and json.loads(output)["message"].startswith("No SBC is attached")
    await onboarding.consent("GET_USER_SYNC_CONSENT")
    await onboarding.consent("GET_PRESENCE_CONSENT")
    token, tenant_id = onboarding.token, onboarding.tenant["tenantId"]
    ent_token = await enterprise_token(onboarding)
    msal = {"authenticationResult": onboarding.msal_object}
    sbc_id = (await client.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{onboarding.login.reseller_id}",
                               headers=bearer(token))).json()[0]["sbcGatewayId"]
    route = (await client.post("/provisioning/provisionDirectRouting", headers=bearer(ent_token),
                               json=msal | {"sbcGatewayId": sbc_id})).json()

    pbx = SippRegistrar(tmp_path, "104", "first-Secret-1", challenge_after_ms=300).start()
    try:
        location = await client.post("/pbx/configurePBX", headers=bearer(token), json={
            "enterpriseId": onboarding.enterprise_id, "pbxLocation": "Loopback PBX", "pbxType": "BroadWorks",
            "canonicalPbxSIPDomain": "127.0.0.1", "proxyDomainPort": pbx.port, "regExpiresValue": 300})
        assert location.status_code == 200, location.text
        ga_token = onboarding.msal_object["authenticationResult"]["accessToken"]
        upn = licensed_users(live, ga_token, onboarding.tenant["globalAdmin"]["username"])[-1]["userPrincipalName"]
        number = fresh_numbers()[0]
        body = user_body(onboarding, upn=upn, number=number, route=route["directRouteId"], location="Loopback PBX")
        body |= {"password": "first-Secret-1", "rePassword": "first-Secret-1"}
        configured = await client.post("/enterprise/configureUser", headers=bearer(token), json=body)
        assert configured.status_code == 200, configured.text
        user_id = configured.json()["id"]

        # The PBX receives a REGISTER for the user, answers the challenge's digest check, and Kamailio says so.
        register = pbx.wait_for(authorized_register("104", "first-Secret-1"))
        assert register.header("To") == "<sip:104@127.0.0.1>"
        assert register.header("Contact") == f"<sip:tv-{user_id}@{FQDN}>"  # the gateway FQDN, never an IP
        assert register.header("Expires") == "300"
        pbx.wait_for(lambda m: m.direction == "sent" and m.first_line == "SIP/2.0 200 OK")
        report = await wait_registered(client, token, tenant_id)
        assert report["sbcAttached"] is True and report["reachable"] is True and report["drift"] == []
        (user,) = report["users"]
        assert user["teamsUserId"] == upn and user["pbxUserId"] == "104" and user["proxy"] == f"sip:127.0.0.1:{pbx.port}"
        sets = {s["SET"]["ID"]: [t["DEST"]["URI"] for t in s["SET"]["TARGETS"]]
                for s in kamailio.rpc("dispatcher.list")["result"]["RECORDS"]}
        assert sets == {1: ["sip:127.0.0.1:5999"], 1000 + location.json()["id"]: [f"sip:127.0.0.1:{pbx.port}"]}
        code, output = await asyncio.to_thread(cli_status, live, kamailio)
        assert code == 0, output
        listed = {u["teamsUserId"]: u for u in json.loads(output)["users"]}
        assert listed[upn]["registration"] == "REGISTERED" and "first-Secret-1" not in output

        # A new password: the PBX's administrator sets it there, the provider through the API; the next REGISTER
        # authenticates with it.
        pbx.restart("second-Secret-2")
        changed = await client.post("/enterprise/configureUser", headers=bearer(token),
                                    json=body | {"password": "second-Secret-2", "rePassword": "second-Secret-2"})
        assert changed.status_code == 200 and changed.json()["changed"] is True, changed.text
        register = pbx.wait_for(lambda m: is_register(m) and m.header("Authorization") is not None)
        assert digest_valid(register, "104", "second-Secret-2") and not digest_valid(register, "104", "first-Secret-1")
        await wait_registered(client, token, tenant_id)

        # Kamailio down: the change waits and is applied once it is back (nothing is lost).
        kamailio.stop()
        down = await registration(client, token, tenant_id)
        assert down["reachable"] is False and down["users"][0]["registration"] == "UNKNOWN" and "did not answer" in down["message"]
        pbx.restart("third-Secret-3")
        changed = await client.post("/enterprise/configureUser", headers=bearer(token),
                                    json=body | {"password": "third-Secret-3", "rePassword": "third-Secret-3"})
        assert changed.status_code == 200, changed.text
        time.sleep(1.0)
        kamailio.start()
        pbx.wait_for(authorized_register("104", "third-Secret-3"))
        await wait_registered(client, token, tenant_id)

        # The user moves to another PBX location: unregistered at the old registrar, registered at the new one.
        (tmp_path / "pbx2").mkdir()
        pbx2 = SippRegistrar(tmp_path / "pbx2", "104", "third-Secret-3", challenge_after_ms=300).start()
        try:
            second = await client.post("/pbx/configurePBX", headers=bearer(token), json={
                "enterpriseId": onboarding.enterprise_id, "pbxLocation": "Loopback PBX 2", "pbxType": "BroadWorks",
                "canonicalPbxSIPDomain": "127.0.0.1", "proxyDomainPort": pbx2.port, "regExpiresValue": 300})
            assert second.status_code == 200, second.text
            before = len(pbx.messages())
            moved = await client.post("/enterprise/configureUser", headers=bearer(token), json=body | {
                "password": "third-Secret-3", "rePassword": "third-Secret-3", "pbxLocation": "Loopback PBX 2"})
            assert moved.status_code == 200 and moved.json()["pbxLocation"] == "Loopback PBX 2", moved.text
            pbx.wait_for(authorized_register("104", "third-Secret-3", expires="0"), after=before)
            pbx2.wait_for(authorized_register("104", "third-Secret-3", expires="300"))
            report = await wait_registered(client, token, tenant_id)
            assert report["users"][0]["proxy"] == f"sip:127.0.0.1:{pbx2.port}"
            pbx.stop()
            pbx = pbx2  # deleted below, there
        except BaseException:
            pbx2.stop()
            raise

        # A new number through updateUserDetails (the PBX user's number is the Teams number) reaches the SBC: it kept
        # registering the old one, so the PBX's calls to the user went to Microsoft for the old number (whoever holds
        # it next) and the user's calls out found no PBX user.
        renumbered_to = f"+{fresh_numbers()[2]}"
        renumbered = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),
                                       json=msal | {"userPrincipalName": upn, "phoneNumber": renumbered_to})
        assert renumbered.status_code == 200, renumbered.text
        await wait_registered(client, token, tenant_id)
        held = [r["l_username"] for r in kamailio.rpc("uac.reg_dump")["result"] if r["l_uuid"] == f"tv-{user_id}"]
        assert held == [renumbered_to], held

        # Another reseller sees neither the user nor the enterprise's registrations.
        intruder = bearer(await token_for(client, organisation.resellers[1]))
        assert (await client.delete(f"/pbx/deletePBXUser/{user_id}", headers=intruder)).status_code == 404
        foreign = await client.post("/pbx/getSBCRegistrationsForEnterprise",
                                    headers=intruder | {"Content-Type": "application/json"}, content=tenant_id)
        assert foreign.status_code == 404, foreign.text

        # The user is deleted: the registration is removed at the PBX (REGISTER with expires 0).
        before = len(pbx.messages())
        deleted = await client.delete(f"/pbx/deletePBXUser/{user_id}", headers=bearer(token))
        assert deleted.status_code == 204, deleted.text
        pbx.wait_for(authorized_register("104", "third-Secret-3", expires="0"), after=before)
        deadline = time.monotonic() + 30  # (ends as soon as it holds; 30 s: a loaded machine)
        while [r for r in kamailio.rpc("uac.reg_dump").get("result") or [] if r["l_uuid"].startswith("tv-")]:
            assert time.monotonic() < deadline, kamailio.rpc("uac.reg_dump")
            time.sleep(0.1)
        report = await registration(client, token, tenant_id)
        assert report["users"] == [] and report["drift"] == []
        again = await client.delete(f"/pbx/deletePBXUser/{user_id}", headers=bearer(token))
        assert again.status_code == 404
        deadline = time.monotonic() + 30  # every sync ended (none left retrying); 30 s: a loaded machine
        # The synchronous API in a thread: DBOS's *_async methods make DBOS's pool the default executor of the
        # calling loop (here the suite's), which dies with the job engine when the next backend starts its own.
        while await asyncio.to_thread(DBOS.list_workflows, name="sync_sbc", status=["PENDING", "ENQUEUED"],
                                      load_input=False, load_output=False):
            assert time.monotonic() < deadline, "an SBC sync is still running"
            time.sleep(0.1)
    finally:
        pbx.stop()


def sip_request(port: int, text: str, timeout: float = 5) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        sock.sendto(text.replace("{local}", str(local)).replace("\n", "\r\n").encode(), ("127.0.0.1", port))
        return sock.recvfrom(65535)[0].decode()


def request_text(method: str, ruri: str, host: str, port: int, from_uri: str, to: str, call_id: str,
                 *headers: str) -> str:
    """A SIP request from a bare peer at host:port (CSeq 1, or 2 for a BYE)."""
    return "\n".join([
        f"{method} {ruri} SIP/2.0", f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{call_id[:12]};rport", *headers,
        "Max-Forwards: 70", f"From: <{from_uri}>;tag=f{call_id[:6]}", f"To: {to}", f"Call-ID: {call_id}",
        f"CSeq: {2 if method == 'BYE' else 1} {method}", f"Contact: <sip:caller@{host}:{port}>", "Content-Length: 0", "", ""])


def call_ids_received(peer: UdpPeer, method: str, seconds: float) -> list[str | None]:
    """The Call-IDs of the `method` requests the peer receives within `seconds` (retransmissions included)."""
    seen, until = [], time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            seen.append(peer.receive(f"{method} ", timeout=until - time.monotonic()).header("Call-ID"))
        except TimeoutError:
            break
    return seen


def test_kamailio_answers_microsoft_options_with_the_gateway_fqdn(kamailio) -> None:
    call_id = uuid.uuid4().hex
    reply = sip_request(kamailio.sip_port, (
        f"OPTIONS sip:{FQDN}:{kamailio.sip_port} SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK" + call_id[:10] + ";rport\n"
        "Max-Forwards: 70\n"
        "From: <sip:sip.pstnhub.microsoft.com>;tag=" + call_id[:8] + "\n"
        f"To: <sip:{FQDN}>\n"
        f"Call-ID: {call_id}\n"
        "CSeq: 1 OPTIONS\n"
        "Contact: <sip:sip.pstnhub.microsoft.com:5061;transport=tls>\n"
        "Content-Length: 0\n\n"))
    lines = reply.split("\r\n")
    assert lines[0] == "SIP/2.0 200 OK", reply
    headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:] if ":" in line}
    assert headers["contact"] == f"<sip:{FQDN}:{kamailio.sip_port}>"  # the FQDN, never an IP
    assert "INVITE" in headers["allow"] and "OPTIONS" in headers["allow"]
    assert headers["call-id"] == call_id and headers["server"] == "teamsvoice-sbc"



@pytest.mark.skipif(tls_module_missing(), reason="Kamailio's tls module is missing (Debian: kamailio-tls-modules)")
def test_with_tls_microsoft_is_answered_on_the_tls_port(tmp_path) -> None:
    """-A WITH_TLS: a TLS listener with the provider's wildcard certificate; OPTIONS over TLS name it in Contact."""
    server = Kamailio(tmp_path, FQDN, tls_cfg=self_signed_tls_cfg(tmp_path, "*.test.example")).start()
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "sbc.pem"))
        context.check_hostname = True
        call_id = uuid.uuid4().hex
        with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=FQDN) as tls:
            assert tls.getpeercert()["subjectAltName"] == (("DNS", "*.test.example"),)
            local = tls.getsockname()[1]
            tls.sendall((
                f"OPTIONS sip:{FQDN}:{server.tls_port};transport=tls SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS 127.0.0.1:{local};branch=z9hG4bK{call_id[:10]};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:sip.pstnhub.microsoft.com>;tag={call_id[:8]}\r\n"
                f"To: <sip:{FQDN}>\r\n"
                f"Call-ID: {call_id}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n").encode())
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += tls.recv(65535)
        message = SipMessage("received", reply.decode())
        assert message.first_line == "SIP/2.0 200 OK", message.text
        assert message.header("Contact") == f"<sip:{FQDN}:{server.tls_port};transport=tls>"
    finally:
        server.stop()

def test_calls_between_microsoft_and_the_pbx_carry_the_gateway_fqdn(kamailio) -> None:
    """The adapter alone drives Kamailio: one registration, Microsoft's proxy and a PBX, both bare UDP peers."""
    microsoft, pbx = UdpPeer(), UdpPeer()
    try:
        sbc = KamailioSbc(kamailio.db_url, kamailio.rpc_url)
        desired = DesiredSbc(
            [Registration(key="tv-9001", number="+14139309001", gateway_fqdn=FQDN, pbx_user_id="501",
                          pbx_auth_user_id="a501", password="Pbx-pw-501", pbx_domain="127.0.0.1",
                          proxy=f"sip:127.0.0.1:{pbx.port}", expires=300)],
            [RouteTarget(1, f"sip:127.0.0.1:{microsoft.port}", "Microsoft"),
             RouteTarget(1001, f"sip:127.0.0.1:{pbx.port}", "PBX location 1")])
        first = sbc.apply(desired)
        assert first.registered_or_refreshed == ["tv-9001"] and first.targets_reloaded
        again = sbc.apply(desired)  # nothing to do the second time
        assert again.registered_or_refreshed == [] and again.unregistered == [] and not again.targets_reloaded

        # A Teams user calls out: Microsoft -> SBC -> the user's PBX, authenticated as the user when challenged.
        call_id = uuid.uuid4().hex
        microsoft.send(kamailio.sip_port, (
            f"INVITE sip:+3225551234@{FQDN}:{kamailio.sip_port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{microsoft.port};branch=z9hG4bK{call_id[:12]};rport\n"
            "Max-Forwards: 70\n"
            f"From: <sip:+14139309001@{FQDN}>;tag=ms{call_id[:6]}\n"
            f"To: <sip:+3225551234@{FQDN}>\n"
            f"Call-ID: {call_id}\n"
            "CSeq: 1 INVITE\n"
            "Contact: <sip:+14139309001@sip.pstnhub.microsoft.com:5061;transport=tls>\n"
            "Content-Length: 0\n\n"))
        invite = pbx.receive("INVITE ")
        assert invite.first_line == "INVITE sip:+3225551234@127.0.0.1 SIP/2.0"
        record_route = invite.header("Record-Route") or ""
        assert f"sip:{FQDN}:{kamailio.sip_port};" in record_route and "127.0.0.1" not in record_route, record_route
        vias = [line for line in invite.text.split("\r\n") if line.lower().startswith("via:")]
        pbx.send(kamailio.sip_port, "\n".join([
            "SIP/2.0 407 Proxy Authentication Required", *vias, f"From: {invite.header('From')}",
            f"To: {invite.header('To')};tag=pbx1", f"Call-ID: {call_id}", "CSeq: 1 INVITE",
            'Proxy-Authenticate: Digest realm="127.0.0.1", nonce="pbx-nonce-1", algorithm=MD5', "Content-Length: 0", "", ""]))
        retried = pbx.receive("INVITE ")
        assert digest_valid(retried, "a501", "Pbx-pw-501", method="INVITE", header="Proxy-Authorization"), retried.text

        # The PBX calls the Teams user at the registration's Contact: SBC -> Microsoft's proxy, to the user's number.
        call_id = uuid.uuid4().hex
        pbx.send(kamailio.sip_port, request_text("INVITE", f"sip:tv-9001@{FQDN}:{kamailio.sip_port}", "127.0.0.1", pbx.port,
                                                 "sip:3225550000@127.0.0.1", f"<sip:tv-9001@{FQDN}>", call_id))
        towards_teams = microsoft.receive("INVITE ")
        assert towards_teams.first_line == f"INVITE sip:+14139309001@{FQDN} SIP/2.0"
        record_route = towards_teams.header("Record-Route") or ""
        assert f"sip:{FQDN}:{kamailio.sip_port};" in record_route and "127.0.0.1" not in record_route, record_route

        # Anyone else (here 127.0.0.2, another machine to Kamailio) calling a Teams user at the same Contact is
        # refused: only the user's own PBX may (else any caller id to any Teams user; the ids are sequential).
        intruder = UdpPeer("127.0.0.2")
        try:
            call_id = uuid.uuid4().hex
            intruder.send(kamailio.sip_port, request_text(
                "INVITE", f"sip:tv-9001@{FQDN}:{kamailio.sip_port}", "127.0.0.2", intruder.port, "sip:+3225550000@127.0.0.2",
                f"<sip:tv-9001@{FQDN}>", call_id))
            refused = intruder.receive("SIP/2.0 ")
            assert refused.first_line == "SIP/2.0 403 Not this user's PBX", refused.text
            assert call_id not in call_ids_received(microsoft, "INVITE", 1.5)  # (the earlier INVITE is retransmitted)

            # Nor can it send in-dialog requests through the SBC (a Route naming it, then any destination).
            call_id = uuid.uuid4().hex
            intruder.send(kamailio.sip_port, request_text(
                "BYE", f"sip:+14139309001@127.0.0.1:{microsoft.port}", "127.0.0.2", intruder.port,
                "sip:+3225550000@127.0.0.2", f"<sip:+14139309001@{FQDN}>;tag=t{call_id[6:12]}", call_id,
                f"Route: <sip:{FQDN}:{kamailio.sip_port};lr>"))
            refused = intruder.receive("SIP/2.0 ")
            assert refused.first_line == "SIP/2.0 403 Not a party of this SBC", refused.text
            assert call_id not in call_ids_received(microsoft, "BYE", 1.0)
        finally:
            intruder.close()

        # The user is gone: Kamailio forgets the registration.
        gone = sbc.apply(DesiredSbc([], desired.targets))
        assert gone.registered_or_refreshed == [] and not gone.targets_reloaded
        assert not [r for r in kamailio.rpc("uac.reg_dump")["result"] if r["l_uuid"] == "tv-9001"]
    finally:
        microsoft.close()
        pbx.close()



def test_a_user_moved_or_deleted_while_its_registration_is_refreshed_is_unregistered_first(kamailio, tmp_path) -> None:
    """A move or a deletion that meets a refresh in flight (Kamailio refreshes on its own timer): the refresh ends,
    then the old PBX gets its REGISTER with expires 0. A record rewritten under the refresh sent the challenge's
    answer to the new PBX, and the old PBX kept the binding (a fresh-clone CI run caught it)."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = SippRegistrar(tmp_path / "old", "701", "Old-pw-701", challenge_after_ms=1500).start()
    new = SippRegistrar(tmp_path / "new", "701", "Old-pw-701", challenge_after_ms=1500).start()
    try:
        sbc = KamailioSbc(kamailio.db_url, kamailio.rpc_url)

        def at(pbx: SippRegistrar) -> DesiredSbc:
            return DesiredSbc([Registration(key="tv-701", number="+14139307010", gateway_fqdn=FQDN, pbx_user_id="701",
                                            pbx_auth_user_id="701", password="Old-pw-701", pbx_domain="127.0.0.1",
                                            proxy=f"sip:127.0.0.1:{pbx.port}", expires=300)], [])

        def registered(desired: DesiredSbc) -> None:
            deadline = time.monotonic() + 30  # (ends as soon as it holds; 30 s: a loaded machine)
            while [h.state for h in sbc.held(desired)] != ["REGISTERED"]:
                assert time.monotonic() < deadline, sbc.held(desired)
                time.sleep(0.1)

        def refresh_in_flight(pbx: SippRegistrar) -> int:
            """Kamailio starts a refresh of tv-701 (its timer, within a second); answers once the PBX has the
            REGISTER, whose challenge the PBX holds back for 1.5 s."""
            before = len(pbx.messages())
            kamailio.rpc("uac.reg_enable", "l_uuid", "tv-701")  # (sets the refresh time to now + 1 s)
            pbx.wait_for(lambda m: is_register(m) and m.header("Authorization") is None, after=before)
            return before

        sbc.apply(at(old))
        old.wait_for(authorized_register("701", "Old-pw-701", expires="300"))
        registered(at(old))

        before = refresh_in_flight(old)
        moved = sbc.apply(at(new))
        assert moved.unregistered == ["tv-701"] and moved.registered_or_refreshed == ["tv-701"], moved
        old.wait_for(authorized_register("701", "Old-pw-701", expires="0"), after=before)
        new.wait_for(authorized_register("701", "Old-pw-701", expires="300"))
        registered(at(new))
        assert not [m for m in new.messages() if is_register(m) and m.header("Expires") == "0"]

        before = refresh_in_flight(new)
        gone = sbc.apply(DesiredSbc([], []))
        assert gone.unregistered == ["tv-701"], gone
        new.wait_for(authorized_register("701", "Old-pw-701", expires="0"), after=before)
        assert not [r for r in kamailio.rpc("uac.reg_dump")["result"] if r["l_uuid"] == "tv-701"]
    finally:
        old.stop()
        new.stop()


def test_a_pbx_name_kamailio_cannot_resolve_is_reported_and_the_others_are_loaded(kamailio) -> None:
    """One location's PBX name Kamailio cannot resolve made dispatcher.reload fail, and the sync retried it for ever,
    holding every other customer's SBC changes behind it (one sync runs at a time). Now it is reported refused, the
    other targets are in use and the sync ends; a second reload within Kamailio's one-per-second limit waits."""
    sbc = KamailioSbc(kamailio.db_url, kamailio.rpc_url)
    good, bad = RouteTarget(1002, "sip:127.0.0.1:5070", "PBX location 2"), RouteTarget(1001, "sip:pbx.nowhere.invalid:5060", "PBX location 1")
    microsoft = RouteTarget(1, "sip:127.0.0.1:5999", "Microsoft")

    def loaded() -> set[tuple[int, str]]:
        return {(s["SET"]["ID"], t["DEST"]["URI"]) for s in kamailio.rpc("dispatcher.list")["result"]["RECORDS"]
                for t in s["SET"]["TARGETS"]}

    first = sbc.apply(DesiredSbc([], [microsoft, bad, good]))
    assert first.targets_reloaded and list(first.refused) == ["target 1001 sip:pbx.nowhere.invalid:5060"], first
    assert "could not load the routing target sip:pbx.nowhere.invalid:5060" in first.refused["target 1001 sip:pbx.nowhere.invalid:5060"]
    assert loaded() == {(1, "sip:127.0.0.1:5999"), (1002, "sip:127.0.0.1:5070")}

    moved = RouteTarget(1002, "sip:127.0.0.1:5072", "PBX location 2")  # at once: within the second of the last reload
    second = sbc.apply(DesiredSbc([], [microsoft, moved]))
    assert second.targets_reloaded and second.refused == {}, second
    assert loaded() == {(1, "sip:127.0.0.1:5999"), (1002, "sip:127.0.0.1:5072")}


def test_a_write_kamailios_database_refuses_never_shows_the_sip_password(kamailio) -> None:
    """Kamailio's database refusing a write (a read-only replica after a failover, a grant missing) was reported with
    SQLAlchemy's text of the statement and its parameters: the SIP password, which the sync logs at every retry."""
    with closing(sqlite3.connect(kamailio.db_url.removeprefix("sqlite:///"))) as db, db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON uacreg BEGIN SELECT RAISE(ABORT, 'read-only replica'); END")
    sbc = KamailioSbc(kamailio.db_url, kamailio.rpc_url)
    desired = DesiredSbc([Registration(key="tv-801", number="+14139308010", gateway_fqdn=FQDN, pbx_user_id="801",
                                       pbx_auth_user_id="801", password="Never-shown-801", pbx_domain="127.0.0.1",
                                       proxy="sip:127.0.0.1:5999", expires=300)], [])
    with pytest.raises(SbcUnavailable) as refused:
        sbc.apply(desired)
    message = refused.value.message
    assert "read-only replica" in message and "Never-shown-801" not in message, message


@pytest.mark.skipif(module_missing("db_postgres.so"), reason="Kamailio's db_postgres is missing (kamailio-postgres-modules)")
def test_kamailio_on_postgresql(postgres, tmp_path) -> None:
    """-A WITH_POSTGRES: teamsvoice writes the tables in PostgreSQL, Kamailio reads them from there."""
    server = Kamailio(tmp_path, FQDN, db_url=postgres.create_database(f"kam_{uuid.uuid4().hex[:10]}")).start()
    pbx = SippRegistrar(tmp_path, "601", "Pg-pw-601").start()
    try:
        sbc = KamailioSbc(server.db_url, server.rpc_url)
        desired = DesiredSbc([Registration(key="tv-601", number="+14139306010", gateway_fqdn=FQDN, pbx_user_id="601",
                                           pbx_auth_user_id="601", password="Pg-pw-601", pbx_domain="127.0.0.1",
                                           proxy=f"sip:127.0.0.1:{pbx.port}", expires=120)], [])
        assert sbc.apply(desired).registered_or_refreshed == ["tv-601"]
        pbx.wait_for(authorized_register("601", "Pg-pw-601"))
        deadline = time.monotonic() + 30  # (ends as soon as it holds; 30 s: a loaded machine)
        while [h.state for h in sbc.held(desired)] != ["REGISTERED"]:
            assert time.monotonic() < deadline, sbc.held(desired)
            time.sleep(0.1)
        before = len(pbx.messages())
        server.stop()  # a restart reads the registration back from PostgreSQL
        server.start()
        pbx.wait_for(authorized_register("601", "Pg-pw-601"), after=before)
    finally:
        pbx.stop()
        server.stop()
