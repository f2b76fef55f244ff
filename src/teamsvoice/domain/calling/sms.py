"""SMS numbers of an enterprise: the numbers its configured users hold, when it has the SMS service."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.calling.models import PbxUser
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning.models import TeamsVoiceUser


async def sms_config(session: AsyncSession, enterprise: Enterprise) -> dict[str, Any]:
    enabled = "SMS" in enterprise.services
    numbers: dict[str, dict[str, Any]] = {}
    if enabled:
        for user in (await session.scalars(select(PbxUser).where(PbxUser.enterprise_id == enterprise.id))).all():
            numbers[user.phone_number] = {"phoneNumber": user.phone_number, "teamsUserId": user.teams_user_id,
                                          "source": "VALET" if user.kind == "VALET" else "PBX", "assigned": True}
        voice = await session.scalars(select(TeamsVoiceUser).where(
            TeamsVoiceUser.enterprise_id == enterprise.id, TeamsVoiceUser.phone_number.is_not(None)))
        for record in voice.all():
            assert record.phone_number is not None
            numbers.setdefault(record.phone_number, {"phoneNumber": record.phone_number,
                                                     "teamsUserId": record.user_principal_name, "source": "TEAMS",
                                                     "assigned": True})
    return {"enterpriseId": enterprise.id, "smsEnabled": enabled, "secureSMSEnabled": enterprise.secure_sms_enabled,
            "smsNumbers": sorted(numbers.values(), key=lambda n: n["phoneNumber"])}
