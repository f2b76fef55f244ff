"""Hashing, encryption and signing of secrets.

Passwords and client secrets are hashed with argon2 (they are only ever compared). Bearer tokens are
random 256-bit values stored as SHA-256 digests (a slow hash adds nothing to that much entropy).
Secrets that must be read back (Microsoft tokens in webhook payloads, SIP passwords) are encrypted
with AES-GCM under a key derived from the master key.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from teamsvoice.core.errors import TooManyRequests

_hasher = PasswordHasher()


def hash_secret(value: str) -> str:
    return _hasher.hash(value)


def verify_secret(value: str, hashed: str) -> bool:
    try:
        return _hasher.verify(hashed, value)
    except (VerificationError, InvalidHashError):
        return False


# argon2 costs ~50 MB and a core for a while per check: at most this many run at once, in threads (never on the
# event loop), so a flood of login attempts queues here instead of starving every other request.
_VERIFY_SLOTS = threading.BoundedSemaphore(2)
_VERIFY_WAIT_SECONDS = 10.0


def _verify_in_slot(value: str, hashed: str) -> bool | None:
    if not _VERIFY_SLOTS.acquire(timeout=_VERIFY_WAIT_SECONDS):
        return None
    try:
        return verify_secret(value, hashed)
    finally:
        _VERIFY_SLOTS.release()


_decoy_hash: str | None = None


def _decoy() -> str:
    global _decoy_hash
    if _decoy_hash is None:
        _decoy_hash = hash_secret(secrets.token_urlsafe(16))
    return _decoy_hash


async def verify_secret_bounded(value: str, hashed: str | None) -> bool:
    """`verify_secret` off the event loop with bounded concurrency; TooManyRequests when saturated.
    `hashed` None (no such account): the same argon2 work against a decoy, and False, so that the answer's
    timing does not tell which usernames or client ids exist."""
    result = await anyio.to_thread.run_sync(_verify_in_slot, value, hashed or _decoy())
    if result is None:
        raise TooManyRequests("The server is busy checking credentials; try again shortly", retry_after=2)
    return result and hashed is not None


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_master_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key wins; otherwise one is generated once into the data directory (mode 0600)."""
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    path = data_dir / "secret.key"
    if path.exists():
        return _unb64(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    path.write_text(_b64(key))
    path.chmod(0o600)
    return key


def load_master_key(configured: str | None, data_dir: Path) -> bytes | None:
    """The master key as `load_or_create_master_key` finds it (the configured key wins, else the data directory's
    `secret.key`), never creating one: None when there is neither. For the operator commands: a key made by one of
    them (an admin host's data directory, where a PostgreSQL deployment's servers keep no key, having theirs from
    TEAMSVOICE_SECRET_KEY or another host) is not the servers' key and decrypts nothing they sealed. Raises OSError
    when the file cannot be read, ValueError when it holds no key teamsvoice wrote."""
    if configured:
        return load_or_create_master_key(configured, data_dir)  # (derived from the setting: nothing is written)
    try:
        text = (data_dir / "secret.key").read_text()
    except FileNotFoundError:
        return None
    return _unb64(text.strip())


@dataclass(frozen=True)
class Keyring:
    """Purpose-bound keys derived from one master key."""

    master: bytes
    # Each purpose's key, derived once: a function of `master` (which never changes) and of the purpose (a constant
    # of the code: a handful of them). An HKDF per decrypt cost more than the decrypt itself.
    _keys: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _derive(self, purpose: str) -> bytes:
        key = self._keys.get(purpose)
        if key is None:
            key = self._keys[purpose] = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                             info=purpose.encode()).derive(self.master)
        return key

    def encrypt(self, plaintext: str, *, purpose: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._derive(f"enc:{purpose}")).encrypt(nonce, plaintext.encode(), purpose.encode())
        return _b64(nonce + sealed)

    def decrypt(self, token: str, *, purpose: str) -> str:
        raw = _unb64(token)
        return AESGCM(self._derive(f"enc:{purpose}")).decrypt(raw[:12], raw[12:], purpose.encode()).decode()

    def sign(self, payload: dict, *, purpose: str) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        mac = hmac.new(self._derive(f"sig:{purpose}"), body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def unsign(self, token: str, *, purpose: str) -> dict | None:
        """The payload if the signature is ours, else None."""
        body, _, mac = token.partition(".")
        if not body or not mac:
            return None
        expected = hmac.new(self._derive(f"sig:{purpose}"), body.encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _unb64(mac)):
                return None
            payload = json.loads(_unb64(body))
        except (ValueError, json.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None
