"""The sign-in service's kept-alive connection closed just as it is reused (the server's idle timeout, 5 s for the
emulator, meeting our next request): MSAL's request is sent on it and the server hangs up without an answer. A
fresh-clone CI run lost an administrator's consent so ("Could not redeem the authorization code: RemoteDisconnected",
final). Such a request is sent once more on a new connection; a redeemed code cannot be redeemed twice, so a retry
of one the server did receive is refused, never applied twice."""

import socket
import threading
from pathlib import Path

import httpx
import pytest

from m365_emulator.server import EmulatorServer
from m365_emulator.settings import EmulatorSettings
from teamsvoice.core.errors import UpstreamError
from teamsvoice.microsoft.identity import GRAPH_RESOURCE, TEAMS_ADMIN_RESOURCE, MicrosoftIdentity
from tests.microsoft.support import REDIRECT_URI, MsEmulator, admin_consent, register_app, seed_tenant


class HangUpWhenReused:
    """A TCP relay on loopback in front of the emulator. Once armed, the next request sent on a connection that
    already carried one is not relayed: the relay hangs up (the server's side of the race, deterministic), and
    disarms."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.hung_up = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _hang_up(self) -> bool:
        with self._lock:
            if not self.armed:
                return False
            self.armed, self.hung_up = False, self.hung_up + 1
            return True

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        answered = False  # (client side: the server has answered on this connection)
        try:
            while data := source.recv(65536):
                if from_client and answered and self._hang_up():
                    break
                target.sendall(data)
                if from_client:
                    answered = True  # (any later chunk of the client is a request on a connection already used)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


@pytest.fixture
def relayed(tmp_path):
    """An emulator of its own, reached only through the relay (its sign-in documents name the relay)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relay = HangUpWhenReused(port)
    server = EmulatorServer(EmulatorSettings(data_dir=tmp_path, public_url=relay.url), port=port)
    server.start()
    try:
        with httpx.Client(base_url=relay.url, verify=str(server.ca_cert_path), timeout=30) as admin:
            emulator = MsEmulator(relay.url, Path(server.ca_cert_path), admin)
            app = register_app(emulator)
            tenant = seed_tenant(emulator, "relayed.example", users=3)
            yield relay, emulator, app, tenant
    finally:
        server.stop()
        relay.close()


async def test_a_request_on_a_connection_closed_at_reuse_is_sent_again(relayed) -> None:
    relay, emulator, app, tenant = relayed
    identity = MicrosoftIdentity(login_url=relay.url, client_id=app.client_id, client_secret=app.secret,
                                 ca_bundle=str(emulator.ca))
    scopes = [f"{GRAPH_RESOURCE}/Directory.ReadWrite.All"]
    try:
        await identity.authorization_url(scopes=scopes, redirect_uri=REDIRECT_URI, state="s", nonce="n")  # (MSAL
        # discovers the authority: the connection is kept alive)
        code = admin_consent(emulator, tenant, app)
        relay.armed = True
        redeemed = await identity.redeem_code(code=code, scopes=scopes, redirect_uri=REDIRECT_URI, nonce=None)  # type: ignore[arg-type]
        assert redeemed.access_token and relay.hung_up == 1

        # An app-only token too (its own POST).
        assert await identity.app_token(tenant.tenant_id, GRAPH_RESOURCE)
        relay.armed = True
        assert await identity.app_token(tenant.tenant_id, TEAMS_ADMIN_RESOURCE)
        assert relay.hung_up == 2
    finally:
        identity.close()


async def test_a_code_redeemed_twice_is_refused_not_applied_twice(ms_emulator, app, tenant) -> None:
    identity = MicrosoftIdentity(login_url=ms_emulator.url, client_id=app.client_id, client_secret=app.secret,
                                 ca_bundle=str(ms_emulator.ca))
    try:
        code = admin_consent(ms_emulator, tenant, app)
        scopes = [f"{GRAPH_RESOURCE}/Directory.ReadWrite.All"]
        await identity.redeem_code(code=code, scopes=scopes, redirect_uri=REDIRECT_URI, nonce=None)  # type: ignore[arg-type]
        with pytest.raises(UpstreamError) as refused:
            await identity.redeem_code(code=code, scopes=scopes, redirect_uri=REDIRECT_URI, nonce=None)  # type: ignore[arg-type]
        assert refused.value.retryable is False and "refused the authorization code" in str(refused.value)
    finally:
        identity.close()


def test_a_tenant_whose_sign_in_configuration_hangs_holds_up_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a tenant's msal application reads its OpenID configuration from the sign-in service (a round trip).
    Each tenant's is built under a lock of its own: one whose read hangs delays no other tenant's tokens (under one
    lock for all, a worker starting a change in twenty tenants read their configurations one after another), and
    callers of one tenant share its one build."""
    import teamsvoice.microsoft.identity as identity

    release, slow_reading = threading.Event(), threading.Event()
    built: list[str] = []

    class Application:  # stands for msal.ConfidentialClientApplication: its constructor's discovery, timed
        def __init__(self, client_id: str, *, authority: str, **_: object) -> None:
            tenant = authority.rsplit("/", 1)[-1]
            if tenant == "slow":
                slow_reading.set()
                assert release.wait(10)
            built.append(tenant)

    monkeypatch.setattr(identity.msal, "ConfidentialClientApplication", Application)
    service = MicrosoftIdentity(login_url="https://login.test", client_id="app", client_secret="secret", ca_bundle=None)
    slow = [threading.Thread(target=service._app, args=("slow",)) for _ in range(2)]
    for thread in slow:
        thread.start()
    assert slow_reading.wait(5)
    fast = threading.Thread(target=service._app, args=("fast",))
    fast.start()
    try:
        fast.join(5)
        assert not fast.is_alive() and built == ["fast"]  # built while the slow tenant's read still hangs
    finally:
        release.set()
    for thread in slow:
        thread.join(5)
    assert built == ["fast", "slow"] and service._app("slow") is service._app("slow")  # built once for both callers
