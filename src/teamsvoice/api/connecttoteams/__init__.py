"""The ConnecttoTeams API family (specs 000-003, vendor-notes part 1)."""

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.connecttoteams import enterprise, oauth, pbx, provisioning, reseller, restricted, sms, valet

ROUTERS: list[APIRouter] = [oauth.router, reseller.router, pbx.router, enterprise.router, provisioning.router, restricted.router,
                            valet.router, sms.router]
