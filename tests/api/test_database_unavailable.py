"""The database unreachable (PostgreSQL stopped or restarting): each family answers 503 with Retry-After in its own
envelope, a failure worth trying again. It was 500 "Internal error", which says the request itself is at fault (found
by a probe that stopped PostgreSQL under `teamsvoice api`)."""

import socket
import tempfile

import httpx

from teamsvoice.app import create_app
from teamsvoice.settings import Settings


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


async def test_every_family_answers_503_while_the_database_does_not_answer() -> None:
    settings = Settings(data_dir=tempfile.mkdtemp(), database_url=f"postgresql://tv:pw@127.0.0.1:{_closed_port()}/tv")
    transport = httpx.ASGITransport(app=create_app(settings), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as api:
        token = await api.post("/oauth/token", auth=("client", "secret"),
                               data={"grant_type": "password", "username": "someone", "password": "pw"})
        fusion = await api.post("/api/v01/auth/login", json={"username": "someone", "password": "pw"})
        ctt = await api.get("/reseller/getResellers/1", headers={"Authorization": "Bearer a-token"})
    for answer in (token, fusion, ctt):
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5", answer.text
        assert "database did not answer or was busy" in answer.text and "pw@" not in answer.text
    assert token.json()["message"] == ctt.json()["message"]  # ConnecttoTeams' envelope
    assert fusion.json()["error"]["code"] == 1504
