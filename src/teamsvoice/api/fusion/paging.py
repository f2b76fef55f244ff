"""Opaque `next` tokens for Fusion lists (Fusion's wire format: the domain pages by offsets and positions).

A token is sealed (encrypted and authenticated with the keyring's `fusion-next` key: the client can neither
read nor change what it holds, such as the Microsoft Graph page link of the MS Teams users list) and names the
query it continues (page size, search, sort..., the subscription): sent with other query values, changed or made
by anyone else it is refused (400 naming `next`), as the spec asks ("use the same page_size and search ... the
token is only valid in this specific context").
"""

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.security import Keyring

PURPOSE = "fusion-next"
MAX_PAGE_SIZE = 1000
INVALID_NEXT = "invalid_next_token"
MAX_TOKEN_LENGTH = 8192  # a Graph page link and a position, sealed, are far shorter


def _context_digest(context: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(context, sort_keys=True, default=str).encode()).hexdigest()[:24]


def encode_cursor(keyring: Keyring, position: dict[str, Any], context: dict[str, Any]) -> str:
    """A sealed token for `position` (where the next page starts), valid only for the query `context`."""
    payload = json.dumps({**position, "c": _context_digest(context)}, separators=(",", ":"), sort_keys=True)
    return keyring.encrypt(payload, purpose=PURPOSE)


def _opened(keyring: Keyring, token: str) -> dict[str, Any] | None:
    """What a token this API sealed holds; None for anything else (changed, foreign, not a token)."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        payload = json.loads(keyring.decrypt(token, purpose=PURPOSE))
    except (ValueError, InvalidTag, UnicodeError):  # binascii.Error and JSONDecodeError are ValueErrors
        return None
    return payload if isinstance(payload, dict) else None


def decode_cursor(keyring: Keyring, token: str, context: dict[str, Any], *, fields: dict[str, type]) -> dict[str, Any]:
    """The position a token holds; 400 when it was not issued by this API, lacks one of `fields` (name: type)
    or belongs to another query."""
    payload = _opened(keyring, token)
    if payload is None or not all(isinstance(payload.get(name), kind) for name, kind in fields.items()):
        raise ValidationFailed("next: not a token issued by this API", code=INVALID_NEXT)
    if payload.get("c") != _context_digest(context):
        raise ValidationFailed("next: the token is only valid with the same page_size and search (and sort, dir, "
                               "filters) as the query that returned it; discard it to start a new query",
                               code=INVALID_NEXT)
    return {name: payload[name] for name in fields}


def encode_next(keyring: Keyring, offset: int, context: dict[str, Any]) -> str:
    return encode_cursor(keyring, {"o": offset}, context)


def decode_next(keyring: Keyring, token: str | None, context: dict[str, Any]) -> int:
    """The offset a token continues from (0 without a token)."""
    if not token:
        return 0
    offset = decode_cursor(keyring, token, context, fields={"o": int})["o"]
    if offset < 0:
        raise ValidationFailed("next: not a token issued by this API", code=INVALID_NEXT)
    return int(offset)


def check_page_size(page_size: int) -> int:
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise ValidationFailed(f"page_size: must be between 1 and {MAX_PAGE_SIZE}")
    return page_size


@dataclass(frozen=True)
class Page:
    offset: int
    page_size: int
    total: int

    def wire(self, keyring: Keyring, context: dict[str, Any]) -> dict[str, Any]:
        """`page`, `pages`, `results` and, when more remain, `next`."""
        body: dict[str, Any] = {
            "page": self.offset // self.page_size + 1,
            "pages": max(1, math.ceil(self.total / self.page_size)),
            "results": self.total,
        }
        if self.offset + self.page_size < self.total:
            body["next"] = encode_next(keyring, self.offset + self.page_size, context)
        return body
