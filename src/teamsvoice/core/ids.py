"""Identifiers handed out to clients."""

import secrets
import uuid


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_client_id() -> str:
    return secrets.token_hex(16)


def new_username(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
