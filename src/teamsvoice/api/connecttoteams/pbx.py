"""PBX endpoints (/pbx/*)."""

from typing import Any

from fastapi import APIRouter

from teamsvoice.api.connecttoteams.deps import ResellerDep
from teamsvoice.api.connecttoteams.wire import render_pbx_type
from teamsvoice.api.deps import UnitOfWorkDep
from teamsvoice.core.errors import NotFound
from teamsvoice.domain.orgs import repository

router = APIRouter(prefix="/pbx", tags=["ConnecttoTeams: PBX"])


@router.get("/getPBXTypesByResellerId", summary="PBX types available to a reseller")
async def get_pbx_types(resellerId: int, uow: UnitOfWorkDep, principal: ResellerDep) -> list[dict[str, Any]]:
    if await repository.get_reseller(uow.session, principal, resellerId) is None:
        raise NotFound(f"Reseller {resellerId} not found")
    return [render_pbx_type(p) for p in await repository.pbx_types_for(uow.session, resellerId)]
