"""Emulator settings: where its state lives and the URL clients use to reach it."""

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EmulatorSettings:
    data_dir: Path
    # Issuer URLs, discovery endpoints, @odata.nextLink and Location headers are built from this, so it
    # must be the address clients actually connect to (scheme, host and port).
    public_url: str = "https://127.0.0.1:8081"
    # Entra keeps authorization codes valid for about 10 minutes.
    auth_code_lifetime_seconds: int = 600
    # Microsoft's published request limits are modelled unless this is "off" (M365_EMULATOR_LIMITS=off):
    # the default of `limits` in /_admin/faults. See m365_emulator.faults.
    limits: str = field(default_factory=lambda: os.environ.get("M365_EMULATOR_LIMITS", "microsoft"))

    @property
    def database_path(self) -> Path:
        return self.data_dir / "m365-emulator.sqlite3"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/")
