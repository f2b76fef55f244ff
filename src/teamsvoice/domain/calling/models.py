"""Calling services of an enterprise: direct routes into its tenant, PBX locations, PBX/CallApp users,
the CallApp service account, the Unified App template, and the durable sync jobs that push them."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base
from teamsvoice.core.ids import new_uuid


class DirectRoute(Base):
    """What provisionDirectRouting made in the tenant for one SBC gateway; its id is `directRouteId`."""

    __tablename__ = "direct_routes"
    __table_args__ = (UniqueConstraint("enterprise_id", "sbc_gateway_id", name="uq_direct_route_per_gateway"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    sbc_gateway_id: Mapped[int] = mapped_column(ForeignKey("sbc_gateways.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    gateway_fqdn: Mapped[str] = mapped_column(String(255))
    sip_port: Mapped[int] = mapped_column(Integer)
    pstn_usage: Mapped[str] = mapped_column(String(200))
    voice_route: Mapped[str] = mapped_column(String(200))
    number_pattern: Mapped[str] = mapped_column(String(200))
    voice_routing_policy: Mapped[str] = mapped_column(String(200))
    last_changes: Mapped[list[str]] = mapped_column(JSON, default=list)
    provisioned_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PbxLocation(Base):
    """A PBX instance (location) the enterprise's PBX users register to; the fields of
    getBasicPBXLocationDetailsForEnterprise."""

    __tablename__ = "pbx_locations"
    __table_args__ = (UniqueConstraint("enterprise_id", "pbx_location", name="uq_pbx_location_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    pbx_type_id: Mapped[int] = mapped_column(ForeignKey("pbx_types.id"))
    pbx_location: Mapped[str] = mapped_column(String(200))
    pbx_label: Mapped[str] = mapped_column(String(200))
    canonical_pbx_sip_domain: Mapped[str] = mapped_column(String(255))
    proxy_domain_port: Mapped[int] = mapped_column(Integer, default=0)
    presence_package_type: Mapped[str] = mapped_column(String(40), default="call-info")
    reg_expires_value: Mapped[int] = mapped_column(Integer, default=0)
    call_policy: Mapped[dict] = mapped_column(JSON, default=dict)
    # The boolean switches, by their wire names (apiAccessEnabled, topologyHiding, ...).
    flags: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PbxUser(Base):
    """A PBX (or CallApp) user: the PBX side of a Teams user. When it has a direct route, its Teams voice
    configuration is the linked TeamsVoiceUser, which syncTeamsRegistrations pushes to Microsoft."""

    __tablename__ = "pbx_users"
    __table_args__ = (UniqueConstraint("enterprise_id", "teams_user_id", name="uq_pbx_user_upn"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # PBX or VALET (CallApp)
    teams_user_id: Mapped[str] = mapped_column(String(255))  # the UPN, lower case
    microsoft_user_id: Mapped[str] = mapped_column(String(64))
    voice_user_id: Mapped[int | None] = mapped_column(ForeignKey("teams_voice_users.id"), unique=True)
    pbx_location_id: Mapped[int] = mapped_column(ForeignKey("pbx_locations.id"), index=True)
    direct_route_id: Mapped[int | None] = mapped_column(ForeignKey("direct_routes.id"), index=True)
    phone_number: Mapped[str] = mapped_column(String(40), unique=True)
    pbx_user_id: Mapped[str] = mapped_column(String(100))
    pbx_auth_user_id: Mapped[str] = mapped_column(String(100))
    sip_password_encrypted: Mapped[str] = mapped_column(Text)
    portal_login_name: Mapped[str | None] = mapped_column(String(200))
    portal_password_encrypted: Mapped[str | None] = mapped_column(Text)
    user_type: Mapped[str | None] = mapped_column(String(40))
    user_tag: Mapped[str | None] = mapped_column(String(200))
    login_id: Mapped[str | None] = mapped_column(String(255))
    call_policy: Mapped[dict] = mapped_column(JSON, default=dict)
    options: Mapped[dict] = mapped_column(JSON, default=dict)  # useTeamsVoicemail, useEnterpriseDialPlan, ...
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class CallAppServiceAccount(Base):
    """The callappservice@<domain> account made in the tenant (vendor-notes 1.12). Its password is ours to keep."""

    __tablename__ = "callapp_service_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), unique=True)
    user_principal_name: Mapped[str] = mapped_column(String(255))
    microsoft_user_id: Mapped[str] = mapped_column(String(64))
    password_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TeamsAppTemplate(Base):
    """The Unified App settings of an enterprise (vendor-notes 1.2); `version` grows on every change."""

    __tablename__ = "teams_app_templates"
    __table_args__ = (UniqueConstraint("enterprise_id", "app_type", name="uq_app_template_per_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    app_type: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(36), default=new_uuid)
    version: Mapped[int] = mapped_column(Integer, default=1)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)  # the non-image fields by wire name
    branding_image: Mapped[str] = mapped_column(Text)  # base64 PNG 192x192
    outline_image: Mapped[str] = mapped_column(Text)  # base64 PNG 32x32
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class CallingJob(Base):
    """A durable sync (Teams users, Unified App): its progress is readable while it runs."""

    __tablename__ = "calling_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # SYNC_TEAMS_USERS or SYNC_UNIFIED_APP
    status: Mapped[str] = mapped_column(String(20), default="QUEUED")  # QUEUED, RUNNING, COMPLETED, FAILED
    # The Global Administrator's delegated Graph token when the caller sent an MSAL object (publishing to the
    # org catalog accepts only delegated tokens). Encrypted; erased when the job ends.
    graph_token_encrypted: Mapped[str | None] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer, default=0)
    # Empty since revision 0021: each user's result is a row of `calling_job_results` (`CallingJobResult`). Kept (a
    # released table's column is not altered; NOT NULL with no server default, so still written as {}).
    results: Mapped[dict] = mapped_column(JSON, default=dict)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class CallingJobResult(Base):
    """One user's result of a calling job (`calling/workflows.user_result`), under the key the job records it by (the
    user principal name): written by an upsert per result (a step run again rewrites its users' rows), counted per
    job by the database and read in pages (`calling/repository`). The row's id keeps the order in which the job
    first recorded each user."""

    __tablename__ = "calling_job_results"
    __table_args__ = (UniqueConstraint("job_id", "key", name="uq_calling_job_result_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("calling_jobs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(40))  # the result's `status` ("" when it has none)
    result: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
