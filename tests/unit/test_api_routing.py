"""api/routing.APIRouter turns away a path none of its routes can match, and otherwise routes exactly as FastAPI's
own router: the same requests get the same answers (200, 404, 405, the trailing-slash redirect) from an app built
with either."""

import fastapi
import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Match

from teamsvoice.api import routing


def build(router_class: type[fastapi.APIRouter]) -> tuple[FastAPI, fastapi.APIRouter, fastapi.APIRouter]:
    items = router_class(prefix="/api/v01/draas/{instance}/tenants", tags=["items"])
    other = router_class(prefix="/reseller")

    @items.get("")
    async def list_items(instance: str) -> dict[str, str]:
        return {"route": "list", "instance": instance}

    @items.get("/{uuid}")
    async def get_item(instance: str, uuid: str) -> dict[str, str]:
        return {"route": "get", "uuid": uuid}

    @items.post("/{uuid}/subscriptions/{number}")
    async def post_sub(uuid: str, number: int) -> dict[str, object]:
        return {"route": "post", "number": number}

    @other.get("/getResellers/{masterResellerId}")
    async def resellers(masterResellerId: int) -> dict[str, object]:
        return {"route": "resellers", "id": masterResellerId}

    @other.get("/files/{rest:path}")
    async def files(rest: str) -> dict[str, str]:
        return {"route": "files", "rest": rest}

    app = FastAPI()
    for router in (other, items):
        app.include_router(router)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"route": "health"}

    return app, items, other


REQUESTS = [
    ("GET", "/api/v01/draas/d1/tenants"), ("GET", "/api/v01/draas/d1/tenants/"), ("GET", "/api/v01/draas/d1/tenants/u1"),
    ("GET", "/api/v01/draas/d1/tenants/u1/"), ("DELETE", "/api/v01/draas/d1/tenants/u1"),
    ("POST", "/api/v01/draas/d1/tenants/u1/subscriptions/7"), ("GET", "/api/v01/draas/d1/tenants/u1/subscriptions/7"),
    ("POST", "/api/v01/draas/d1/tenants/u1/subscriptions/x"), ("GET", "/api/v01/draas//tenants/u1"),
    ("GET", "/reseller/getResellers/12"), ("GET", "/reseller/getResellers/abc"), ("POST", "/reseller/getResellers/12"),
    ("GET", "/reseller/files/a/b/c.txt"), ("GET", "/reseller/files/"), ("GET", "/reseller"), ("GET", "/health"),
    ("GET", "/health/"), ("GET", "/nothing/here"), ("GET", "/"), ("GET", "/api/v01/draas/d1/tenants/u1/other"),
]


@pytest.mark.parametrize("method,path", REQUESTS)
async def test_answers_as_fastapis_router(method: str, path: str) -> None:
    answers = []
    for router_class in (fastapi.APIRouter, routing.APIRouter):
        app, _, _ = build(router_class)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            response = await client.request(method, path, follow_redirects=False)
        answers.append((response.status_code, response.text, response.headers.get("location"),
                        response.headers.get("allow")))
    assert answers[0] == answers[1]


def test_a_path_no_route_can_match_is_turned_away() -> None:
    _, items, other = build(routing.APIRouter)
    scope = {"type": "http", "method": "GET", "path": "/reseller/getResellers/12", "root_path": "", "headers": []}
    assert items.matches(scope) == (Match.NONE, {})
    assert other._may_match("/reseller/getResellers/12") and other._may_match("/reseller/files/x/y")
    assert not other._may_match("/reseller/getResellers/12/more") and not other._may_match("/api/v01/x")
    assert items._may_match("/api/v01/draas/d1/tenants/u1/subscriptions/7")  # any method: 405 is FastAPI's to give
    assert not items._may_match("/api/v01/draas/d1/tenants/u1/subscriptions")


async def test_a_route_added_later_is_matched() -> None:
    app, items, _ = build(routing.APIRouter)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/api/v01/draas/d1/tenants/u1/late")).status_code == 404

        @items.get("/{uuid}/late")
        async def late(uuid: str) -> dict[str, str]:
            return {"route": "late"}

        assert (await client.get("/api/v01/draas/d1/tenants/u1/late")).json() == {"route": "late"}
