"""Secrets at rest: hashing, encryption and signed state."""

from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from teamsvoice.core.security import Keyring, hash_secret, load_or_create_master_key, verify_secret


def test_hashed_secrets_verify_only_the_original() -> None:
    hashed = hash_secret("s3cret")
    assert "s3cret" not in hashed and verify_secret("s3cret", hashed)
    assert not verify_secret("s3cret ", hashed) and not verify_secret("x", "not-a-hash")


def test_encryption_round_trips_and_is_bound_to_its_purpose() -> None:
    keys = Keyring(b"k" * 32)
    sealed = keys.encrypt("sip-password", purpose="sip")
    assert "sip-password" not in sealed and keys.decrypt(sealed, purpose="sip") == "sip-password"
    with pytest.raises(InvalidTag):
        keys.decrypt(sealed, purpose="webhook")
    with pytest.raises(InvalidTag):
        Keyring(b"o" * 32).decrypt(sealed, purpose="sip")


def test_signed_payloads_reject_tampering_and_other_purposes() -> None:
    keys = Keyring(b"k" * 32)
    token = keys.sign({"k": "abc", "exp": 1}, purpose="state")
    assert keys.unsign(token, purpose="state") == {"k": "abc", "exp": 1}
    body, _, mac = token.partition(".")
    assert keys.unsign(body[:-2] + "xx." + mac, purpose="state") is None
    assert keys.unsign(token, purpose="other") is None
    assert keys.unsign("garbage", purpose="state") is None and keys.unsign("", purpose="state") is None


def test_master_key_is_generated_once_and_private(tmp_path: Path) -> None:
    first = load_or_create_master_key(None, tmp_path)
    assert load_or_create_master_key(None, tmp_path) == first and len(first) == 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    assert load_or_create_master_key("configured", tmp_path) != first


async def test_an_unknown_account_costs_the_same_argon2_check(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No account: the check runs against a decoy hash (so timing does not reveal which usernames exist)
    and never succeeds, whatever the value."""
    from teamsvoice.core import security

    checked: list[str] = []
    real = security.verify_secret
    monkeypatch.setattr(security, "verify_secret", lambda value, hashed: checked.append(hashed) or real(value, hashed))
    assert await security.verify_secret_bounded("guess", None) is False
    assert len(checked) == 1 and checked[0].startswith("$argon2")
    known = security.hash_secret("right")
    assert await security.verify_secret_bounded("right", known) is True
    assert await security.verify_secret_bounded("wrong", known) is False


def test_the_product_hashes_with_rfc_9106_parameters() -> None:
    """A process of the product (not this one: the suite hashes with argon2's test profile, tests/conftest.py)
    hashes passwords and client secrets with RFC 9106's second recommended parameters: argon2id, 64 MiB, three
    passes, four lanes."""
    import subprocess
    import sys

    hashed = subprocess.run([sys.executable, "-c", "from teamsvoice.core.security import hash_secret; print(hash_secret('x'))"],
                            capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), hashed
    assert verify_secret("x", hashed) and not verify_secret("y", hashed)
