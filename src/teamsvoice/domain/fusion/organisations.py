"""The provider tree as the Fusion API shows it: distributors (MASTER_RESELLER nodes) and resellers (RESELLER
nodes) under the caller's control, searchable and paged. Nodes outside the caller's subtree do not exist for it."""

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import NotFound
from teamsvoice.domain.fusion import repository
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import FUSION_LEVEL_OF, RESELLER_LEVEL_OF
from teamsvoice.domain.fusion.scope import org_in_scope
from teamsvoice.domain.orgs.models import Reseller
from teamsvoice.domain.orgs.repository import descendant_reseller_ids


async def list_nodes(
    session: AsyncSession, principal: FusionPrincipal, level: str, *, search: str | None, parent: str | None,
    offset: int, limit: int,
) -> tuple[list[Reseller], int]:
    """`level`: distributor or reseller. `parent` narrows to the subtree of a node the caller controls."""
    scope = principal.reseller_scope
    if parent:
        node = await org_in_scope(session, principal, parent)
        if node is None:
            raise NotFound(f"parent: {parent} is not a distributor or reseller under your control")
        scope = await descendant_reseller_ids(session, node.id)
    return await repository.resellers_page(session, scope, RESELLER_LEVEL_OF[level], name_contains=search,
                                           offset=offset, limit=limit)


async def node(session: AsyncSession, principal: FusionPrincipal, level: str, uuid: str) -> Reseller:
    found = await org_in_scope(session, principal, uuid)
    if found is None or FUSION_LEVEL_OF.get(found.level) != level:
        raise NotFound(f"{level.capitalize()} {uuid} not found")
    return found
