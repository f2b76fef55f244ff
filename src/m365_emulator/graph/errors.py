"""Graph's error envelope: {"error": {"code", "message", "innerError": {date, request-id, client-request-id}}}."""

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from .. import clock


class GraphError(Exception):
    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


def not_found(identifier: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{identifier}' does not exist or one of its queried reference-property objects are not present.",
    )


def bad_request(message: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", message)


def graph_error_response(request: Request, status_code: int, code: str, message: str) -> JSONResponse:
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id", request_id)
    return JSONResponse(
        status_code=status_code,
        content={
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": clock.iso_now(),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                },
            }
        },
        headers={"request-id": request_id, "client-request-id": client_request_id},
    )


async def read_json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
            "valid JSON format."
        ) from exc
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body
