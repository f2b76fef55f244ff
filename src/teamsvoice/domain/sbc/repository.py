"""The SBC's queries: what teamsvoice holds that the SBC must hold (every PBX location, direct route and PBX
user) and the rows of the registration report. They take a synchronous `Session` (job steps, the CLI); the API
calls them through `AsyncSession.run_sync`."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from teamsvoice.domain.calling.models import DirectRoute, PbxLocation, PbxUser


@dataclass(frozen=True)
class UserRow:
    """A PBX user as the registration report lists it."""
    pbx_user: int
    enterprise_id: int
    teams_user_id: str
    pbx_user_id: str
    pbx_location: str


def all_locations(session: Session) -> list[PbxLocation]:
    return list(session.scalars(select(PbxLocation).order_by(PbxLocation.id)))


def all_routes(session: Session) -> list[DirectRoute]:
    return list(session.scalars(select(DirectRoute).order_by(DirectRoute.id)))


def all_pbx_users(session: Session) -> list[PbxUser]:
    return list(session.scalars(select(PbxUser).order_by(PbxUser.id)))


def user_rows(session: Session, enterprise_id: int | None = None) -> list[UserRow]:
    """Every PBX user with its location's name (the enterprise's alone when given), in order."""
    query = (select(PbxUser.id, PbxUser.enterprise_id, PbxUser.teams_user_id, PbxUser.pbx_user_id, PbxLocation.pbx_location)
             .join(PbxLocation, PbxLocation.id == PbxUser.pbx_location_id).order_by(PbxUser.id))
    if enterprise_id is not None:
        query = query.where(PbxUser.enterprise_id == enterprise_id)
    return [UserRow(*row) for row in session.execute(query)]
