"""The emulator verifies a token once and remembers it (a client sends the same token for an hour): what it
remembers answers as a full verification would, an expired token is refused however often it passed before, and
a token remembered for one audience is still checked for another."""

import time
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest

from m365_emulator import faults
from m365_emulator.identity import keys as keys_module
from m365_emulator.identity.keys import SigningKey
from m365_emulator.store import Store

GRAPH = "https://graph.microsoft.com"


def _token(key: SigningKey, **claims: object) -> str:
    now = int(time.time())
    return key.sign({"aud": GRAPH, "iss": "https://sts.windows.net/t1/", "tid": "t1", "appid": "app-1",
                     "iat": now, "exp": now + 60, **claims})


def test_a_remembered_token_answers_as_verified_until_it_expires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey(Store(tmp_path / "store.db"))
    token = _token(key)
    first = key.verify(token, [GRAPH])
    assert key.verify(token, [GRAPH]) == first and first["tid"] == "t1"

    with pytest.raises(jwt.InvalidAudienceError):  # remembered for Graph, not for another audience
        key.verify(token, ["https://api.interfaces.records.teams.microsoft.com"])

    later = SimpleNamespace(time=lambda: first["exp"] + 1)
    monkeypatch.setattr(keys_module, "time", later)
    with pytest.raises(jwt.ExpiredSignatureError):
        key.verify(token, [GRAPH])


def test_a_token_that_fails_is_not_remembered(tmp_path: Path) -> None:
    key = SigningKey(Store(tmp_path / "store.db"))
    other = SigningKey(Store(tmp_path / "other.db"))
    forged = _token(other)
    for _ in range(2):
        with pytest.raises(jwt.InvalidTokenError):
            key.verify(forged, [GRAPH])
    tampered = _token(key)[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(jwt.InvalidTokenError):
            key.verify(tampered, [GRAPH])


def test_the_throttling_caller_of_a_token(tmp_path: Path) -> None:
    key = SigningKey(Store(tmp_path / "store.db"))
    token = _token(key)
    headers = [(b"authorization", f"Bearer {token}".encode())]
    assert faults._caller(headers) == ("app-1", "t1") == faults._caller(headers)
    assert faults._caller([(b"authorization", b"Bearer not-a-token")]) is None
    assert faults._caller([]) is None
