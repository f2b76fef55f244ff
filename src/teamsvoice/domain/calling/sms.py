"""SMS numbers of an enterprise: the numbers its configured users hold, when it has the SMS service."""

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.calling import repository
from teamsvoice.domain.orgs.models import Enterprise


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
        for user in await repository.pbx_users_of(session, enterprise.id):
            numbers[user.phone_number] = SmsNumber(user.phone_number, user.teams_user_id,
                                                   "VALET" if user.kind == "VALET" else "PBX")
        for record in await repository.voice_users_with_number(session, enterprise.id):
            assert record.phone_number is not None
            numbers.setdefault(record.phone_number, SmsNumber(record.phone_number, record.user_principal_name, "TEAMS"))
    return SmsConfig(enterprise.id, enabled, enterprise.secure_sms_enabled,
                     sorted(numbers.values(), key=lambda n: n.phone_number))
