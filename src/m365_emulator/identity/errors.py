"""Entra's token-endpoint error body: OAuth 2 fields plus AADSTS codes, trace and correlation ids."""

import uuid
from datetime import datetime, timezone

from fastapi.responses import JSONResponse

from .. import clock


class OAuthError(Exception):
    def __init__(self, error: str, aadsts: int, message: str, status_code: int = 400) -> None:
        super().__init__(f"AADSTS{aadsts}: {message}")
        self.error = error
        self.aadsts = aadsts
        self.message = message
        self.status_code = status_code


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = datetime.fromtimestamp(clock.now(), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return JSONResponse(
        status_code=exc.status_code,
        content={
            "error": exc.error,
            "error_description": f"AADSTS{exc.aadsts}: {exc.message} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {timestamp}",
            "error_codes": [exc.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def tenant_not_found(segment: str) -> OAuthError:
    return OAuthError(
        "invalid_tenant",
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud.",
    )


def app_not_found(client_id: str, tenant: str) -> OAuthError:
    return OAuthError(
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    )
