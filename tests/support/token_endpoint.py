"""Microsoft's token endpoint failing the redemption of an authorization code (a consent callback's), for the live
server of the test process. The emulator's fault layer (`PUT /_admin/faults`) fails Graph and the cmdlet endpoint,
never its sign-in service, so the failure is made where the connector's sign-in requests meet the network (requests'
transport, under MSAL and `microsoft/identity.py`): the request is answered as Microsoft would answer it, without
reaching the emulator (the code is not spent). Only code redemptions fail; app-only tokens are asked as ever."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from requests.adapters import HTTPAdapter


def _redeems_a_code(request: requests.PreparedRequest) -> bool:
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    return (request.method == "POST" and str(request.url).endswith("/oauth2/v2.0/token")
            and b"grant_type=authorization_code" in body)


@contextmanager
def failing_code_redemption(monkeypatch: pytest.MonkeyPatch, status: int = 503) -> Iterator[list[str]]:
    """While the block runs, each code redemption is answered `status` (with Entra's JSON error body). Yields the
    URLs of the redemptions it failed."""
    send = HTTPAdapter.send
    failed: list[str] = []

    def answering(self: HTTPAdapter, request: requests.PreparedRequest, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not _redeems_a_code(request):
            return send(self, request, *args, **kwargs)
        failed.append(str(request.url))
        response = requests.Response()
        response.status_code, response.reason = status, "Service Unavailable"
        response._content = (b'{"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient '
                             b'error has occurred. Please try again."}')
        response.headers["Content-Type"] = "application/json"
        response.url, response.request = str(request.url), request
        return response

    monkeypatch.setattr(HTTPAdapter, "send", answering)
    try:
        yield failed
    finally:
        monkeypatch.setattr(HTTPAdapter, "send", send)
