"""teamsvoice's own API (not a vendor's): desired voice state, plan, apply, drift, under /api/teamsvoice/v1.

Authentication: a bearer token of either family, a ConnecttoTeams token from /oauth/token or a Fusion access
token from /api/v01/auth/login, scoped as its family scopes it (deps.py): a ConnecttoTeams reseller, or a
Fusion system/distributor/reseller login, sees the tenants of its node and the nodes below it; an enterprise
login, or a Fusion tenant login, its own. Fusion logins also need the route's Fusion role.
Errors use the Spring-style envelope of the ConnecttoTeams family: {timestamp, status, error, message, path}.
"""

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.teamsvoice import audit, voice_state

PREFIX = voice_state.PREFIX
ROUTERS: list[APIRouter] = [voice_state.router]
ROUTERS.append(audit.router)  # GET /api/teamsvoice/v1/audit (issue 13)
