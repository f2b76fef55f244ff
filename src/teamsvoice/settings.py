"""Runtime configuration, read from `TEAMSVOICE_*` environment variables."""

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
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
        default=True, description="Webhooks (consent redirectUrls, drift events) may go to loopback and other internal "
        "addresses (private, link-local, unique local...; checked on the address the host resolves to at delivery), "
        "and plain http to loopback (the embedded default; set false in production)."
    )

    fusion_draas_instance: str = Field(
        default="draas_v1", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="The `{draas_instance}` of the Fusion API's paths (the vendor's portal uses draas_v1; Netaxis gives "
        "each provider its own): scripts written for the provider's Fusion instance keep their URLs.")

    microsoft_mode: Literal["emulator", "cloud"] = "emulator"
    microsoft_login_url: str = Field(default="https://login.microsoftonline.com", description="Entra ID authority host.")
    microsoft_graph_url: str = Field(default="https://graph.microsoft.com/v1.0", description="Graph base URL.")
    microsoft_powershell_url: str | None = Field(
        default=None, description="Cmdlet endpoint of the emulator; unset in cloud mode (pwsh is used)."
    )
    microsoft_client_id: str = Field(default="", description="Application (client) id of the multi-tenant app.")
    microsoft_client_secret: str = Field(default="", description="Its client secret.")
    microsoft_ca_bundle: str | None = Field(default=None, description="Extra CA file to trust (the emulator's CA).")
    microsoft_tenant_concurrency: int = Field(
        default=64, ge=1, description="Most Microsoft work items of one tenant running at once across every worker, and "
        "most requests one process keeps in flight to one tenant per service class (below it the budget scheduler "
        "keeps about rate x latency in flight, halving on 429)."
    )
    microsoft_retry_max_attempts: int = Field(default=6, ge=1, description="Tries per Microsoft call (429/5xx/network).")
    microsoft_retry_max_wait_seconds: float = Field(
        default=120.0, ge=0, description="Most time one Microsoft call may spend waiting between retries."
    )
    microsoft_retry_base_delay_seconds: float = Field(
        default=0.5, gt=0, description="First backoff step when Microsoft sends no Retry-After (doubles, jittered)."
    )
    microsoft_pwsh_path: str = Field(default="pwsh", description="PowerShell 7 executable (cloud mode).")
    microsoft_certificate_path: str | None = Field(
        default=None, description="PFX/PEM certificate for Teams PowerShell app auth (cloud mode)."
    )
    microsoft_certificate_password: str | None = Field(default=None, description="Password of that certificate file.")
    microsoft_certificate_thumbprint: str | None = Field(
        default=None, description="Or: thumbprint of a certificate in the user's certificate store (cloud mode)."
    )
    microsoft_cmdlet_timeout_seconds: float = Field(default=300.0, gt=0, description="Longest one Teams cmdlet may run.")

    microsoft_app_rate_per_second: int | None = Field(
        default=None, ge=1, description="App-wide cap on Microsoft work items started per second, across every worker (bulk jobs' items; "
        "the items of jobs of at most five users, on their own queue, have a cap of this many of their own)."
    )
    microsoft_worker_items: int = Field(
        default=384, ge=1, description="Most Microsoft work items one worker process runs at once, all tenants together "
        "(each holds a thread and uses the database between its requests). Spending the app-wide Teams budget takes "
        "about 300/s / 3.3 requests per item x 6-8 s per item = 500-700 items in flight across the workers: 128 per "
        "worker left two workers short of it (bench/README.md, run T), 256 took 5-7% longer than 384 for a 20-tenant "
        "change (run AF: a tenant's items fill its `$batch` calls and policy grants more).")
    microsoft_teams_requests_per_second: float = Field(
        default=30.0, gt=0, description="Microsoft's Teams service budget per app per tenant (Graph's Teams APIs and "
        "Teams PowerShell), shared by every process through the database.")
    microsoft_teams_app_requests_per_second: float = Field(
        default=300.0, gt=0, description="Microsoft's Teams service budget per app across all tenants.")
    microsoft_directory_units_per_10_seconds: float = Field(
        default=3500.0, gt=0, description="Microsoft's directory budget per app per tenant in resource units per 10 s "
        "(3,500 for tenants under 50 users: the safe default; 5,000 for 50-500, 8,000 above).")
    microsoft_directory_writes_per_150_seconds: float = Field(
        default=3000.0, gt=0, description="Microsoft's directory writes per app per tenant per 2.5 minutes.")
    microsoft_budget_share: float = Field(
        default=1.0, gt=0, le=1, description="The part of each Microsoft budget teamsvoice spends (lower it when other "
        "tools call Microsoft with the same app registration).")
    microsoft_budget_margin_seconds: float = Field(
        default=0.3, ge=0, lt=1, description="Seconds of each Microsoft budget's rate kept out of its burst: they absorb "
        "the jitter between a request's grant and when Microsoft counts it (network, Microsoft's front end, clocks).")
    bulk_enqueue_page_size: int = Field(
        default=500, ge=1, le=5000, description="Items a bulk job's workflow enqueues per transaction of the job engine's "
        "database (its first items start once the first page is in).")
    database_pool_size: int = Field(
        default=10, ge=1, description="Pooled PostgreSQL connections each process keeps (as many again open for a "
        "moment under load; a caller waits up to 30 s for one). A worker's items hold a connection only while they read "
        "or write, never while they wait on Microsoft, so 10 serve microsoft_worker_items 384; PostgreSQL must allow "
        "every process twice this plus the job engine's own.")
    credential_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a process keeps a bearer token it verified (by the token's digest, "
        "never past its expiry); 0 turns it off. A revocation in the same process is seen at once, one made by another "
        "process (api, worker, CLI) up to this long later (core/credential_cache.py).")
    job_executor_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A worker silent this long is dead: live workers take over its unfinished work."
    )
    job_orphan_sweep_seconds: float = Field(
        default=60.0, ge=0, description="How often a worker (or serve) starts work committed but never enqueued by a "
        "process that died in between (an api process, a bulk import stopped at once); 0: only at start."
    )
    job_shutdown_grace_seconds: float = Field(
        default=3.0, ge=0, description="On SIGINT/SIGTERM, how long in-flight Microsoft calls may still finish."
    )
    job_retry_max_delay_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait between two tries of an item that Microsoft failed transiently."
    )

    request_read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Longest a client may take to send a request (its headers and body) to `serve` or "
        "`api`: a connection that sends nothing, or sends its request a byte at a time, is closed then. (The time the "
        "request takes to answer is not bounded; between requests a kept-alive connection closes after 5 s idle.)")

    max_request_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted (larger: 413 in the family's envelope)."
    )
    max_bulk_request_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024,
        description="The same for Fusion's bulk update (up to 10,000 users) and the other route whose bodies are large "
        "by design, saveOrUpdateTeamsApplicationTemplate (two images of up to 1 MiB, base64).",
    )

    login_free_failures: int = Field(
        default=5, ge=1, description="Failed logins an account may have before it is locked (then 1 s, 2 s, 4 s... "
        "up to login_lock_max_seconds; see docs/security.md).")
    login_address_free_failures: int = Field(
        default=30, ge=1, description="The same per client address (higher: many users may share one address).")
    login_lock_base_seconds: float = Field(default=1.0, gt=0, description="The first lock's length.")
    login_lock_max_seconds: float = Field(default=900.0, gt=0, description="The longest lock.")
    login_forget_after_seconds: float = Field(
        default=900.0, gt=0, description="A counter starts again this long after its last failure.")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Reverse proxies (IP addresses or CIDR networks) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed: from a peer among them, the client is the right-most X-Forwarded-For address "
        "that is not itself a trusted proxy (api/forwarded.py). Empty: the client is always the TCP peer and those "
        "headers are ignored. Environment: a JSON list, TEAMSVOICE_TRUSTED_PROXIES='[\"10.0.0.5\", \"10.0.1.0/24\"]'.")

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, entries: list[str]) -> list[str]:
        checked = []
        for entry in entries:
            try:
                checked.append(str(ipaddress.ip_network(entry.strip())))
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: '{entry}' is not an IP address or a CIDR network ({exc}); "
                                 "'*' is not accepted: a client could then claim any address") from None
        return checked

    metrics_access: Literal["off", "loopback", "token"] = Field(
        default="loopback", description="Who may read /metrics: nobody, clients on a loopback address, or "
        "clients sending `Authorization: Bearer <metrics_token>`.")
    metrics_token: str | None = Field(default=None, description="The bearer token for metrics_access=token.")
    cors_allowed_origins: list[str] = Field(
        default_factory=list, description="Browser origins (scheme://host[:port]) that may call the APIs from another "
        "origin, e.g. a Fusion portal: preflights are answered and Access-Control-Allow-Origin is set for them only. "
        'Empty: no cross-origin access. Environment: a JSON list, TEAMSVOICE_CORS_ALLOWED_ORIGINS=\'["https://portal.example"]\'.')

    @field_validator("cors_allowed_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        checked = []
        for origin in origins:
            parsed = urlsplit(origin)
            if (parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path or parsed.query
                    or parsed.fragment or parsed.username or origin != origin.strip()):
                raise ValueError(f"cors_allowed_origins: '{origin}' is not an origin (scheme://host[:port], no path; "
                                 "'*' is not accepted)")
            checked.append(origin.lower())
        return checked

    sbc_kamailio_db_url: str | None = Field(
        default=None, description="Kamailio's database (sqlite:///... or postgresql://...) where teamsvoice writes the "
        "uacreg and dispatcher tables. With sbc_kamailio_rpc_url it attaches the SBC; unset: no SBC is attached.")
    sbc_kamailio_rpc_url: str | None = Field(
        default=None, description="Kamailio's JSON-RPC endpoint (jsonrpcs over HTTP on loopback), e.g. "
        "http://127.0.0.1:5071/RPC (deploy/kamailio/kamailio.cfg).")
    sbc_gateway_fqdn: str = Field(
        default="sbc.invalid", description="Local domain of the registrations of users without a direct route (users "
        "with one use their direct route's gateway FQDN).")
    sbc_registration_expires: int = Field(
        default=600, ge=60, description="Registration lifetime asked of the PBX when the PBX location's "
        "regExpiresValue is 0.")
    sbc_microsoft_proxies: list[str] = Field(
        default=["sip:sip.pstnhub.microsoft.com:5061;transport=tls", "sip:sip2.pstnhub.microsoft.com:5061;transport=tls",
                 "sip:sip3.pstnhub.microsoft.com:5061;transport=tls"],
        description="Microsoft's Direct Routing SIP proxies (dispatcher set 1), a JSON list.")
    sbc_rpc_timeout_seconds: float = Field(default=5.0, gt=0, description="Longest one JSON-RPC call to Kamailio may take.")
    sbc_retry_max_delay_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait between two tries while Kamailio is down (changes wait, none is lost).")

    drift_scan_interval_seconds: float = Field(
        default=3600.0, ge=0, description="How often every linked tenant is scanned for drift (0: never; "
        "`POST /api/teamsvoice/v1/drift/scan` or `teamsvoice drift --scan` scan on demand).")
    number_quarantine_seconds: float = Field(
        default=30 * 24 * 3600.0, ge=0, description="How long a number freed by offboarding (its user deleted in "
        "Entra ID) stays out of use before it is free in the inventory again.")

    audit_retention_days: int = Field(
        default=365, ge=0, description="Audit log entries older than this many days are deleted by a scheduled "
        "durable job (0: kept for ever).")
    audit_purge_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often worker processes delete the audit entries and the resolved drift events past "
        "their retention.")
    drift_retention_days: int = Field(
        default=90, ge=0, description="Drift events resolved more than this many days ago are deleted by a scheduled "
        "durable job, run as often as the audit log's purge (0: kept for ever; open events always stay).")

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
