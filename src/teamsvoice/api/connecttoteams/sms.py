"""SMS endpoints (/sms/*): vendor-notes 1.12 ("Get SMS Numbers under Enterprise")."""

from typing import Any

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.connecttoteams import calling_wire, docs
from teamsvoice.api.connecttoteams.deps import ResellerDep
from teamsvoice.api.connecttoteams.wire import Id
from teamsvoice.api.deps import UnitOfWorkDep
from teamsvoice.domain.calling import sms
from teamsvoice.domain.calling.common import enterprise_in_scope

router = APIRouter(prefix="/sms", tags=["ConnecttoTeams: SMS"])


@router.post("/getEnterpriseSMSConfig/{enterpriseId}", summary="The enterprise's SMS-capable numbers (response: teamsvoice's design)",
             description="Answers `{enterpriseId, smsEnabled, secureSMSEnabled, smsNumbers: [{phoneNumber, "
             "teamsUserId, source, assigned}]}`: the numbers of the enterprise's configured users, "
             "SMS-capable when the enterprise has the SMS service (empty list otherwise).",
             responses=docs.ok(docs.SmsConfig, "The SMS configuration"))
async def get_enterprise_sms_config(enterpriseId: Id, uow: UnitOfWorkDep, principal: ResellerDep) -> dict[str, Any]:
    enterprise = await enterprise_in_scope(uow.session, principal, enterprise_id=enterpriseId)
    return calling_wire.render_sms_config(await sms.sms_config(uow.session, enterprise))
