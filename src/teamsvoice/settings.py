"""Runtime configuration, read from `TEAMSVOICE_*` environment variables."""

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TEAMSVOICE_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the embedded SQLite files, keys and demo credentials live.")
    database_url: str | None = Field(
        default=None, description="sqlite:///... or postgresql://...; unset: DATA_DIR/teamsvoice.sqlite3."
    )
    public_url: str | None = Field(
        default=None, description="How clients and Microsoft reach this API (redirect URIs are built from it)."
    )
    secret_key: str | None = Field(
        default=None, description="Master key for signing and encryption; unset: generated once into DATA_DIR/secret.key."
    )

    access_token_ttl_seconds: int = 3600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    consent_state_ttl_seconds: int = 900
    allow_loopback_redirects: bool = Field(
        default=True, description="Accept http://127.0.0.1 / localhost redirectUrls (the embedded default)."
    )

    microsoft_mode: Literal["emulator", "cloud"] = "emulator"
    microsoft_login_url: str = Field(default="https://login.microsoftonline.com", description="Entra ID authority host.")
    microsoft_graph_url: str = Field(default="https://graph.microsoft.com/v1.0", description="Graph base URL.")
    microsoft_powershell_url: str | None = Field(
        default=None, description="Cmdlet endpoint of the emulator; unset in cloud mode (pwsh is used)."
    )
    microsoft_client_id: str = Field(default="", description="Application (client) id of the multi-tenant app.")
    microsoft_client_secret: str = Field(default="", description="Its client secret.")
    microsoft_ca_bundle: str | None = Field(default=None, description="Extra CA file to trust (the emulator's CA).")

    webhook_retry_initial_seconds: float = 2.0
    webhook_retry_max_seconds: float = 300.0

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'teamsvoice.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
