"""teamsvoice's own API (not a vendor's): desired voice state, plan, apply, drift, under /api/teamsvoice/v1.

Authentication and scoping are the ConnecttoTeams family's: a bearer token from /oauth/token; a reseller
sees the tenants of its enterprises (and of the resellers below it), an enterprise its own tenant only.
Errors use the Spring-style envelope of that family: {timestamp, status, error, message, path}.
"""

from fastapi import APIRouter

from teamsvoice.api.teamsvoice import voice_state

PREFIX = voice_state.PREFIX
ROUTERS: list[APIRouter] = [voice_state.router]
