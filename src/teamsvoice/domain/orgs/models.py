"""The provider organisation tree (partner > master reseller > reseller), its people and credentials,
and the customers (enterprises) under it."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base


class Reseller(Base):
    __tablename__ = "resellers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # PARTNER, MASTER_RESELLER or RESELLER, as ConnecttoTeams names the levels.
    level: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    # https redirectUrls this reseller registered for consent webhooks (exact prefixes).
    registered_redirect_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PortalUser(Base):
    """An API admin of a reseller, or the generated admin of a registered enterprise."""

    __tablename__ = "portal_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    user_type: Mapped[str] = mapped_column(String(20))  # RESELLER, MASTER_RESELLER, PARTNER or ENTERPRISE
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_changed_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiClient(Base):
    """An OAuth client (id + secret) that may ask /oauth/token for tokens."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OAuthToken(Base):
    __tablename__ = "oauth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # access or refresh
    portal_user_id: Mapped[int] = mapped_column(ForeignKey("portal_users.id"), index=True)
    api_client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class SbcGateway(Base):
    __tablename__ = "sbc_gateways"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers.id"), index=True)
    region: Mapped[str] = mapped_column(String(100))
    fqdn: Mapped[str] = mapped_column(String(255))
    sip_port: Mapped[int] = mapped_column(Integer, default=5061)


class PbxType(Base):
    __tablename__ = "pbx_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers.id"), index=True)
    pbx_name: Mapped[str] = mapped_column(String(100))
    pbx_label: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    hosting_type: Mapped[str] = mapped_column(String(20), default="Cloud")


class Enterprise(Base):
    __tablename__ = "enterprises"
    __table_args__ = (UniqueConstraint("reseller_id", "enterprise_name", name="uq_enterprise_name_per_reseller"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers.id", use_alter=True), index=True)
    enterprise_name: Mapped[str] = mapped_column(String(200))
    country_name: Mapped[str | None] = mapped_column(String(100))
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    pbx_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    sbc_gateway_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    billing_references: Mapped[list[str]] = mapped_column(JSON, default=list)
    ent_config_infos: Mapped[list[dict]] = mapped_column(JSON, default=list)
    allow_external_numbers: Mapped[bool] = mapped_column(Boolean, default=False)
    can_add_extensions: Mapped[bool] = mapped_column(Boolean, default=False)
    can_reseller_manage_enterprise_provisioning: Mapped[bool] = mapped_column(Boolean, default=False)
    federated: Mapped[bool] = mapped_column(Boolean, default=False)
    federation_domain: Mapped[str | None] = mapped_column(String(255))
    pbx_moh: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_by: Mapped[str | None] = mapped_column(String(200))
    restrict_admin_access: Mapped[bool] = mapped_column(Boolean, default=True)
    secure_sms_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    user_limit: Mapped[int] = mapped_column(Integer, default=0)
    user_provisioning_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set by registration (the Microsoft tenant the Global Administrator signed in from).
    tenant_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    tenant_domain: Mapped[str | None] = mapped_column(String(255))
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_on: Mapped[datetime | None] = mapped_column(DateTime)
    admin_given_name: Mapped[str | None] = mapped_column(String(100))
    admin_family_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
