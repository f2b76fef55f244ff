"""The Netaxis Fusion vocabulary over the shared domain.

- Fusion login users (system | distributor | reseller | tenant level) with explicit permission sets, and
  their sessions (refresh tokens are signed JWTs; a session row lets logout revoke them).
- Fusion tenants (customers) owned by a node of the existing `Reseller` tree, and their subscriptions.
  Every subscription is backed 1:1 by a ConnecttoTeams `Enterprise` row: linking an MS Teams tenant sets
  `Enterprise.tenant_id`, and Teams users/numbers are the same `TeamsVoiceUser` rows for both API families.
- The subscription's number inventory; whether a number is assigned is derived from `TeamsVoiceUser`.
- The MS Teams administrator credentials (password encrypted), onboarding wizard runs, SRE group filter.
"""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base
from teamsvoice.core.ids import new_uuid
from teamsvoice.domain.orgs.models import Reseller


class FusionTenant(Base):
    __tablename__ = "fusion_tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200))
    billing_id: Mapped[str | None] = mapped_column(String(200))
    markup: Mapped[float | None] = mapped_column(Float)
    # The distributor (MASTER_RESELLER) or reseller (RESELLER) node of the shared organisation tree.
    owner_reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # Read only with the tenant, in the same statement (`fusion/repository._with_owner`); never loaded lazily.
    owner: Mapped["Reseller"] = relationship(viewonly=True, lazy="raise")


class FusionUser(Base):
    """A login of the Fusion API. Org levels hang off a reseller node; tenant level off a Fusion tenant."""

    __tablename__ = "fusion_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))  # system, distributor, reseller or tenant
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    fusion_tenant_id: Mapped[int | None] = mapped_column(ForeignKey("fusion_tenants.id"), index=True)
    # The Required-role strings this user holds (see domain/fusion/roles.py for the level profiles).
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Counts the times this login's sessions were ended (password reset, disabled): a console cookie carries the
    # count it was signed with, so one signed before stops working, even once the login is enabled again.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FusionSession(Base):
    """One login. Access and refresh JWTs name it (`sid`); logout revokes it, which kills both."""

    __tablename__ = "fusion_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("fusion_users.id"), index=True)
    # SHA-256 of the current refresh token's jti: a rotated-away refresh token stops working.
    refresh_jti_digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FusionSubscription(Base):
    __tablename__ = "fusion_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fusion_tenant_id: Mapped[int] = mapped_column(ForeignKey("fusion_tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    billing_id: Mapped[str | None] = mapped_column(String(200))
    ms_teams_users: Mapped[int] = mapped_column(Integer, default=0)
    sip_trunk_channels: Mapped[int] = mapped_column(Integer, default=0)
    mode: Mapped[str] = mapped_column(String(20), default="direct_routing")
    # The ConnecttoTeams enterprise that carries this subscription's MS tenant link, users and numbers.
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FusionNumber(Base):
    """A number of a subscription's inventory. Unique across all subscriptions."""

    __tablename__ = "fusion_numbers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fusion_subscriptions.id"), index=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    iso_code: Mapped[str] = mapped_column(String(2))
    country_code: Mapped[str] = mapped_column(String(4))  # the calling code, digits only ("32")
    nsn: Mapped[str] = mapped_column(String(17))
    number_type: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # ranges or numbers (how it was added)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FusionMsTeamsAdmin(Base):
    __tablename__ = "fusion_msteams_admins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fusion_subscriptions.id"), unique=True)
    ms_username: Mapped[str] = mapped_column(String(255))
    ms_password_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FusionWizardRun(Base):
    """One run of the onboarding wizard; the newest run of a subscription is the one reported. A subscription has
    at most one running run (a unique index on the running ones: two starts at the same moment both found none
    running and both ran, against the same tenant). A Microsoft tenant, too, has at most one running run once its
    step 1 named the tenant: the administrator of one tenant may consent for two subscriptions (two resellers'),
    whose runs each passed "linked elsewhere" while neither had linked yet, and each wrote its own SBC into the
    tenant's voice configuration."""

    __tablename__ = "fusion_wizard_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fusion_subscriptions.id"), index=True)
    running: Mapped[bool] = mapped_column(Boolean, default=True)
    # [{"step": int, "text": str, "executed": bool, "ok": bool | None, "detail": str | None}]
    steps: Mapped[list[dict]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(60), default="wizard_0_OK")
    ms_tenant_id: Mapped[str | None] = mapped_column(String(64))
    consent_url: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


Index("uq_fusion_wizard_runs_running", FusionWizardRun.subscription_id, unique=True,
      sqlite_where=FusionWizardRun.running, postgresql_where=FusionWizardRun.running)
Index("uq_fusion_wizard_runs_tenant_running", FusionWizardRun.ms_tenant_id, unique=True,
      sqlite_where=FusionWizardRun.running, postgresql_where=FusionWizardRun.running)


class FusionGroupFilter(Base):
    """The SRE group filter of a subscription (POST msteams/groups replaces it as a whole)."""

    __tablename__ = "fusion_group_filters"
    __table_args__ = (UniqueConstraint("subscription_id", "group_id", name="uq_fusion_group_filter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fusion_subscriptions.id"), index=True)
    group_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255))


class FusionUserProfile(Base):
    """A login's own account fields (APIO's user profile); the login itself stays in `FusionUser`."""

    __tablename__ = "fusion_user_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("fusion_users.id"), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    mobile_number: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FusionLocation(Base):
    """An emergency (civic) address of a subscription, and its Teams counterpart once created there (a civic
    address with its default location, the LocationId given to numbers)."""

    __tablename__ = "fusion_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fusion_subscriptions.id"), index=True)
    company_name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    house_number: Mapped[str] = mapped_column(String(40))
    postbox: Mapped[str | None] = mapped_column(String(40))
    postal_code: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166 alpha-2
    description: Mapped[str | None] = mapped_column(String(200))
    teams_civic_address_id: Mapped[str | None] = mapped_column(String(64))
    teams_location_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FusionNumberLocation(Base):
    """The emergency location given to a Teams user's number (one per user)."""

    __tablename__ = "fusion_number_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Deleting the user row (a user deleted in Fusion) deletes this row with it.
    voice_user_id: Mapped[int] = mapped_column(ForeignKey("teams_voice_users.id", ondelete="CASCADE"), unique=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("fusion_locations.id"), index=True)
