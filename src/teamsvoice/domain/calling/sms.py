"""SMS numbers of an enterprise: the numbers its configured users hold, when it has the SMS service."""

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.calling.models import PbxUser
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning.models import TeamsVoiceUser


@dataclass(frozen=True)
class SmsNumber:
    phone_number: str
    user_principal_name: str
    source: str  # PBX or VALET (a configured user's), TEAMS (a voice user's without one)


@dataclass(frozen=True)
class SmsConfig:
    enterprise_id: int
    sms_enabled: bool
    secure_sms_enabled: bool
    numbers: list[SmsNumber] = field(default_factory=list)  # by phone number


async def sms_config(session: AsyncSession, enterprise: Enterprise) -> SmsConfig:
    enabled = "SMS" in enterprise.services
    numbers: dict[str, SmsNumber] = {}
    if enabled:
        for user in (await session.scalars(select(PbxUser).where(PbxUser.enterprise_id == enterprise.id))).all():
            numbers[user.phone_number] = SmsNumber(user.phone_number, user.teams_user_id,
                                                   "VALET" if user.kind == "VALET" else "PBX")
        voice = await session.scalars(select(TeamsVoiceUser).where(
            TeamsVoiceUser.enterprise_id == enterprise.id, TeamsVoiceUser.phone_number.is_not(None)))
        for record in voice.all():
            assert record.phone_number is not None
            numbers.setdefault(record.phone_number, SmsNumber(record.phone_number, record.user_principal_name, "TEAMS"))
    return SmsConfig(enterprise.id, enabled, enterprise.secure_sms_enabled,
                     sorted(numbers.values(), key=lambda n: n.phone_number))
