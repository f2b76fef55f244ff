"""The API families' router: FastAPI's `APIRouter`, except that a request whose path none of the router's routes
can match is turned away with one regular expression instead of being tried against each route.

FastAPI tries a request against every route of every included router in the order they were included, each try
several Python calls (a Fusion request first goes through all of ConnecttoTeams' routes), and once more inside
the router that matched. Here a router first matches the path against the alternation of its routes' own path
patterns: when that fails no route of the router can match (not even partially: a partial match, the wrong
method, needs the path pattern to match too), so the answer is the one FastAPI would give, `Match.NONE`; when it
succeeds FastAPI matches as it always does. Which route serves a request, and in what order routes are tried,
do not change.

The patterns are the routes' own (`route.path_regex`, the router's prefix included), so a router must be included
without a further prefix (`app.include_router(router)`, as `teamsvoice.app` does).
"""

import re

import fastapi
from starlette._utils import get_route_path  # the path Starlette's routes match (the root path removed)
from starlette.routing import Match
from starlette.types import Scope

_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


class APIRouter(fastapi.APIRouter):
    _paths: re.Pattern[str] | None = None
    _paths_of: int = -1  # how many routes `_paths` was built from (routes are only ever added)

    def _may_match(self, path: str) -> bool:
        if self._paths_of != len(self.routes):
            patterns = [getattr(route, "path_regex", None) for route in self.routes]
            self._paths = None if None in patterns else re.compile("|".join(  # None: a route without a path pattern
                f"(?:{_NAMED_GROUP.sub('(?:', pattern.pattern)})" for pattern in patterns if pattern is not None))
            self._paths_of = len(self.routes)
        return self._paths is None or self._paths.match(path) is not None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and not self._may_match(get_route_path(scope)):
            return Match.NONE, {}
        return super().matches(scope)
