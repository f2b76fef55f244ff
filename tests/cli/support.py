"""Running `teamsvoice` operator commands against the live server's database, job engine and emulator."""

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass

from typer.testing import CliRunner

from teamsvoice.cli import app


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def server_env(live) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The settings an operator's shell has beside the server: its database and Microsoft app registration."""
    settings = live.settings
    return {"TEAMSVOICE_DATABASE_URL": settings.effective_database_url,
            "TEAMSVOICE_MICROSOFT_LOGIN_URL": settings.microsoft_login_url,
            "TEAMSVOICE_MICROSOFT_GRAPH_URL": settings.microsoft_graph_url,
            "TEAMSVOICE_MICROSOFT_POWERSHELL_URL": settings.microsoft_powershell_url or "",
            "TEAMSVOICE_MICROSOFT_CLIENT_ID": settings.microsoft_client_id,
            "TEAMSVOICE_MICROSOFT_CLIENT_SECRET": settings.microsoft_client_secret,
            "TEAMSVOICE_MICROSOFT_CA_BUNDLE": settings.microsoft_ca_bundle or ""}


async def teamsvoice(live, *args: str, env: dict[str, str] | None = None) -> Ran:  # type: ignore[no-untyped-def]
    """The command in this process (in a thread: it runs its own event loop), as an operator would type it."""
    result = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--data-dir", str(live.settings.data_dir)],
                                     env=server_env(live) | (env or {}))
    return Ran(result.exit_code, result.stdout, result.stderr)


def teamsvoice_process(live, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    """A process of its own: commands that enqueue start the job engine's client, one per process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMSVOICE_")} | server_env(live)
    return subprocess.run([sys.executable, "-m", "teamsvoice", *args, "--data-dir", str(live.settings.data_dir)],
                          env=env, capture_output=True, text=True, timeout=timeout)


UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens on it here


async def webhook_deliveries(live, reseller_id: int, receiver, name: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A customer `name` of the reseller with two consent webhook deliveries: one refused, to `receiver` (path
    /hook, 1 attempt), and one still pending, to a loopback port where nothing listens (3 attempts; should a
    starting process resume it, it keeps failing and stays pending). Both URLs are registered."""
    import json

    from teamsvoice.core.security import Keyring, load_or_create_master_key
    from teamsvoice.domain.consent.models import WebhookDelivery
    from teamsvoice.domain.consent.service import WEBHOOK_PURPOSE
    from teamsvoice.domain.orgs.models import Enterprise, Reseller
    from tests.support.database import in_session

    keyring = Keyring(load_or_create_master_key(live.settings.secret_key, live.settings.data_dir))

    async def make(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        reseller = await session.get(Reseller, reseller_id)
        reseller.registered_redirect_urls = [f"{receiver.url}/", f"{UNREACHABLE}/"]
        enterprise = Enterprise(reseller_id=reseller_id, enterprise_name=name)
        session.add(enterprise)
        await session.flush()
        payload = keyring.encrypt(json.dumps({"enterpriseName": name}), purpose=WEBHOOK_PURPOSE)
        refused = WebhookDelivery(enterprise_id=enterprise.id, url=f"{receiver.url}/hook", payload_encrypted=payload,
                                  status="refused", attempts=1, last_error="HTTP 302: redirects are not followed")
        pending = WebhookDelivery(enterprise_id=enterprise.id, url=f"{UNREACHABLE}/later", payload_encrypted=payload,
                                  status="pending", attempts=3, last_error="HTTP 503")
        session.add_all([refused, pending])
        await session.flush()
        return refused.id, pending.id

    return await in_session(live, make)
