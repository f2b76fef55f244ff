"""The RS256 key that signs every token; generated once and kept in the store so tokens survive restarts."""

import base64
import functools
import hashlib
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..store import Store


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


VERIFIED_TOKENS = 4096  # tokens whose verification is remembered (a client keeps using the token it was given)


class SigningKey:
    def __init__(self, store: Store) -> None:
        # token and audiences -> its claims, once verified: a client sends the same token for an hour, and
        # verifying it on every request (RS256 and decoding) was a fifth of the emulator's CPU per Graph read.
        # Only what passed is remembered (a failure raises, and lru_cache keeps no exception), and its expiry is
        # checked again on each use (`verify`).
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._verify)
        with store.transaction() as tx:
            stored = tx.get("signing_key", "default")
            if stored is None:
                private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode()
                tx.put("signing_key", "default", {"pem": pem})
            else:
                pem = stored["pem"]
        self._private = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(self._private, rsa.RSAPrivateKey)
        numbers = self._private.public_key().public_numbers()
        self._public_jwk = {"kty": "RSA", "use": "sig", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
        # Entra's kid is a short thumbprint-like string; a hash of the modulus gives the same stability.
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(self._public_jwk["n"].encode()).digest()[:15]).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def verify(self, token: str, audiences: list[str]) -> dict[str, Any]:
        """Decode a token this emulator issued; raises jwt.InvalidTokenError when it is not valid (expired:
        jwt.ExpiredSignatureError, as pyjwt says it, however often it was verified before)."""
        claims = self._verified(token, tuple(audiences))
        if claims["exp"] <= time.time():
            raise jwt.ExpiredSignatureError("Signature has expired")
        return claims

    def _verify(self, token: str, audiences: tuple[str, ...]) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        if header.get("kid") != self.kid:
            raise jwt.InvalidTokenError("Signing key not recognised")
        return jwt.decode(
            token,
            self._private.public_key(),
            algorithms=["RS256"],
            audience=list(audiences),
            options={"require": ["exp", "iat", "aud", "iss", "tid"]},
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._public_jwk, "kid": self.kid, "x5t": self.kid}]}
