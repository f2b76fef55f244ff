"""Graph's error envelope: {"error": {"code", "message", "innerError": {date, request-id, client-request-id}}}."""

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from .. import clock, json_input


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


def _is_annotation(name: str) -> bool:
    """An OData instance annotation (`@odata.type`, `@odata.id`, `@odata.context`, ...) or a property annotation
    (`members@odata.bind`)."""
    return name.startswith("@") or "@" in name


async def read_json(request: Request, *, entity: str | None = None, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request body's properties. Instance annotations are Graph's, not properties: as Graph does, they are
    accepted (Microsoft's SDKs send `"@odata.type": "#microsoft.graph.user"` with every model) and left out of
    the result, except `keep` (e.g. `@odata.id` of a $ref, `teamsApp@odata.bind`), which the handler reads.
    `@odata.type` must name `entity` (the operation's type) when the handler gives one."""
    body = await _read_object(request)
    odata_type = body.get("@odata.type")
    if odata_type is not None:
        if not isinstance(odata_type, str) or not odata_type.strip("#"):
            raise bad_request("Invalid value specified for the '@odata.type' annotation.")
        if entity is not None and odata_type.lstrip("#") != entity:
            raise bad_request(f"A type named '{odata_type.lstrip('#')}' is not compatible with the expected type "
                              f"'{entity}' of the request body.")
    return {name: value for name, value in body.items() if name in keep or not _is_annotation(name)}


async def _read_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; NaN, Infinity, a lone surrogate or nesting too deep is refused (json_input)
    before any handler stores it."""
    try:
        body = json_input.loads(await request.body())
    except json_input.UnreadableJson as exc:
        raise bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
            f"valid JSON format. {exc}"
        ) from exc
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body
