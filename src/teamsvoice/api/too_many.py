"""429 answers (login throttling) with Retry-After, in each family's envelope (OAuth's for /oauth/token)."""

from fastapi import Request
from fastapi.responses import JSONResponse

from teamsvoice.api.connecttoteams.errors import oauth_error, spring_error
from teamsvoice.api.fusion.errors import fusion_error
from teamsvoice.core.errors import TooManyRequests

FUSION_TOO_MANY = 1029


def render_too_many(request: Request, exc: TooManyRequests) -> JSONResponse:
    path = request.url.path
    if path.startswith("/api/"):
        response = fusion_error(429, FUSION_TOO_MANY, exc.message)
    elif path == "/oauth/token":
        response = oauth_error(429, "too_many_requests", exc.message)
    else:
        response = spring_error(request, 429, exc.message)
    response.headers["Retry-After"] = str(exc.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response
