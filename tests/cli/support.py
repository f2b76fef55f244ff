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
