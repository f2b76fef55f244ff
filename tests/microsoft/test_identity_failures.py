"""Microsoft's token endpoint failing at a code's redemption (an administrator's consent) or an app-only token: what
Microsoft did not answer (unreachable, no answer in time, 429, 5xx, `temporarily_unavailable`) is transient
(`UpstreamError.retryable`: the consent callbacks record nothing and link a new sign-in; jobs wait and try again),
what it refused (invalid_grant, invalid_client) is final.

The emulator's fault layer (`PUT /_admin/faults`) fails Graph and the cmdlet endpoint, never its sign-in service, so
the failing token endpoint here is a sign-in service of the test's own over HTTPS: its tenants' OpenID
configuration as Microsoft's, and a token endpoint answering what the test sets."""

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from m365_emulator.tls import ensure_tls_material
from teamsvoice.core.errors import UpstreamError
from teamsvoice.microsoft.identity import GRAPH_RESOURCE, MicrosoftIdentity
from tests.microsoft.support import REDIRECT_URI

SCOPES = [f"{GRAPH_RESOURCE}/Directory.ReadWrite.All"]
TIMEOUT = 0.5  # the identity's wait for an answer here (30 s in production)


class SignInService:
    """`answer`: what the token endpoint does: ("status", code, JSON body or text, headers), ("hang",) (answers
    nothing until the test ends) or ("drop",) (closes the connection without an answer)."""

    def __init__(self, tls_dir: Any) -> None:
        material = ensure_tls_material(tls_dir)
        self.ca = str(material.ca_cert_path)
        self.answer: tuple[Any, ...] = ("status", 503, {}, {})
        self.token_requests = 0
        self.released = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                data = (json.dumps(body) if not isinstance(body, str) else body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/html")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # the tenant's OpenID configuration, as Entra's names its endpoints
                tenant = self.path.strip("/").split("/")[0]
                base = f"{service.url}/{tenant}"
                self._send(200, {"authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                 "token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0",
                                 "jwks_uri": f"{base}/discovery/v2.0/keys"}, {})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.token_requests += 1
                kind = service.answer[0]
                if kind == "hang":
                    service.released.wait(30)
                    self.close_connection = True
                elif kind == "drop":
                    self.close_connection = True
                else:
                    self._send(*service.answer[1:])

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(material.cert_path, material.key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sign-in-tls")


@pytest.fixture
def sign_in(tls_dir):
    service = SignInService(tls_dir)
    identity = MicrosoftIdentity(login_url=service.url, client_id="app", client_secret="secret", ca_bundle=service.ca,
                                 timeout_seconds=TIMEOUT)
    try:
        yield service, identity
    finally:
        identity.close()
        service.close()


NOT_ANSWERED = {
    "503": ("status", 503, {"error": "server_error"}, {}),
    "500 without JSON": ("status", 500, "<html>Internal Server Error</html>", {}),
    "502": ("status", 502, "Bad Gateway", {}),
    "429": ("status", 429, {"error": "temporarily_unavailable", "error_description": "AADSTS50196: throttled"},
            {"Retry-After": "2"}),
    "temporarily_unavailable": ("status", 400, {"error": "temporarily_unavailable", "error_description":
                                                "The server is temporarily too busy to handle the request."}, {}),
    "connection closed": ("drop",),
    "no answer in time": ("hang",),
}


@pytest.mark.parametrize("answer", NOT_ANSWERED.values(), ids=NOT_ANSWERED.keys())
async def test_a_token_endpoint_that_does_not_answer_for_now_is_transient(sign_in, answer) -> None:
    """Before: every failure of a code's redemption was final (a consent callback recorded the failure and owed the
    provider a failure webhook), a 5xx raised MSAL's own error type (a 500 page, the consent's state burnt) and a
    token endpoint that never answered held the callback for ever."""
    service, identity = sign_in
    service.answer = answer
    started = time.monotonic()
    with pytest.raises(UpstreamError) as failed:
        await identity.redeem_code(code="a-code", scopes=SCOPES, redirect_uri=REDIRECT_URI, nonce="n")
    assert failed.value.retryable is True, failed.value
    assert service.token_requests >= 1
    if answer[0] == "hang":
        assert time.monotonic() - started < 20  # bounded by the timeout (a try and one more), not the service
    with pytest.raises(UpstreamError) as app_only:  # an app-only token: the same rule
        await identity.app_token("contoso.example", GRAPH_RESOURCE)
    assert app_only.value.retryable is True, app_only.value


REFUSED = {
    "invalid_grant": ("status", 400, {"error": "invalid_grant", "error_description": "AADSTS70008: The provided "
                                      "authorization code or refresh token has expired due to inactivity."}, {}),
    "invalid_client": ("status", 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid "
                                       "client secret provided."}, {}),
}


@pytest.mark.parametrize("answer", REFUSED.values(), ids=REFUSED.keys())
async def test_a_code_the_token_endpoint_refuses_stays_final(sign_in, answer) -> None:
    service, identity = sign_in
    service.answer = answer
    with pytest.raises(UpstreamError) as refused:
        await identity.redeem_code(code="a-code", scopes=SCOPES, redirect_uri=REDIRECT_URI, nonce="n")
    assert refused.value.retryable is False and refused.value.upstream_code == answer[2]["error"], refused.value
    assert "refused the authorization code" in refused.value.message



async def test_a_throttled_redemption_holds_up_no_later_one(sign_in) -> None:
    """MSAL keeps a 429 or 5xx answer of the token endpoint for its Retry-After (up to an hour) under a key that is
    the same for every code of the app (its key reads no code), and answers it again without asking: one throttled
    consent made every administrator's consent fail until then. The failure is raised before MSAL keeps it, so the
    next administrator's code is redeemed."""
    service, identity = sign_in
    service.answer = ("status", 429, {"error": "temporarily_unavailable"}, {"Retry-After": "600"})
    with pytest.raises(UpstreamError) as throttled:
        await identity.redeem_code(code="first-code", scopes=SCOPES, redirect_uri=REDIRECT_URI, nonce="n")
    assert throttled.value.retryable is True
    service.answer = ("status", 200, {"access_token": "token", "token_type": "Bearer", "expires_in": 3600,
                                      "scope": SCOPES[0]}, {})
    redeemed = await identity.redeem_code(code="second-code", scopes=SCOPES, redirect_uri=REDIRECT_URI, nonce="n")
    assert redeemed.access_token == "token" and service.token_requests == 2
