"""Helpers for the calling-services tests: PNG icons, tenant users, and reads of the emulated tenant."""

import base64
import struct
import time
import zlib

import httpx
import requests

from tests.support.ctt import bearer


def png(width: int, height: int, rgb: tuple[int, int, int] = (0, 120, 212)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def b64png(width: int, height: int, rgb: tuple[int, int, int] = (0, 120, 212)) -> str:
    return base64.b64encode(png(width, height, rgb)).decode()


def admin_view(live, tenant_id: str, what: str) -> dict:
    response = requests.get(f"{live.emulator.url}/_admin/tenants/{tenant_id}/{what}",
                            verify=str(live.emulator.ca_cert_path), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def graph_get(live, token: str, path: str, **params) -> requests.Response:
    return requests.get(f"{live.emulator.url}/v1.0{path}", params=params or None, headers=bearer(token),
                        verify=str(live.emulator.ca_cert_path), timeout=30)


def licensed_users(live, token: str, admin_upn: str) -> list[dict]:
    """Tenant users with licences (Teams Phone), the Global Administrator left out."""
    users = graph_get(live, token, "/users", **{"$top": "30", "$select": "id,userPrincipalName,assignedLicenses"}).json()["value"]
    return [u for u in users if u["userPrincipalName"] != admin_upn and u.get("assignedLicenses")]


async def wait_for_job(client: httpx.AsyncClient, token: str, status_url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(status_url, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
