"""MS Teams user templates of a subscription (vendor-notes 2.6). Only the list is documented; create,
get, update and delete follow the vendor's style: POST -> 201 {"id"}, PUT/DELETE -> 204. Template 0 is the
built-in default and cannot be changed."""

from typing import Annotated, Any

from fastapi import Body, Depends

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import subscription_access
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import check_name
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import service, templates

router = APIRouter(prefix=SUB_PATH, tags=["Fusion: MS Teams templates"])
_ROLE = "tenants.instance.subscriptions.instance.msteams.templates"


def _access(action: str) -> Any:
    return Annotated[SubscriptionAccess, Depends(subscription_access(f"{_ROLE}.{action}"))]


def render(template: templates.Template) -> dict[str, Any]:
    """A template in Fusion's names (the built-in default has no dates)."""
    body = {"id": template.id, "name": template.name, "productKey": template.product_key,
            "description": template.description, "location": template.location, "vrp": template.vrp,
            "groups": list(template.groups), "licenses": list(template.licenses)}
    if template.created_on is not None and template.updated_on is not None:
        body |= {"createdOn": template.created_on.isoformat(), "updatedOn": template.updated_on.isoformat()}
    return body


def render_properties(properties: templates.TemplatedProperties) -> dict[str, Any]:
    """A user's templated properties (the before/after of applying a template)."""
    return {"groups": properties.groups, "licenses": properties.licenses, "location": properties.location,
            "vrp": properties.vrp}


def _tenant(access: SubscriptionAccess, container: ContainerDep) -> Any:
    """The linked MS Teams tenant a template's names are checked against (None: not linked yet)."""
    return container.connector.connect(access.ms_tenant_id) if access.ms_tenant_id is not None else None


_CHECKED = ("With a linked MS Teams tenant, `groups`, `licenses` and `vrp` must exist in it (400 naming each unknown "
            "one); a subscription not linked yet has them checked when the template is applied.")
FIELDS = {"name", "productKey", "description", "location", "vrp", "groups", "licenses"}


def parse_changes(body: Any, *, creating: bool) -> templates.TemplateChanges:
    """A template's body (vendor-notes 2.6): `name` and `productKey` are required to create one."""
    if not isinstance(body, dict):
        raise ValidationFailed("body: must be a JSON object")
    unknown = set(body) - FIELDS
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    if creating:
        for required in ("name", "productKey"):
            if required not in body:
                raise ValidationFailed(f"{required}: is required")
    changes = templates.TemplateChanges()
    if "name" in body:
        changes.name = check_name("name", service.optional_string("name", body["name"], nullable=False) or "")
    if "productKey" in body:
        changes.product_key = check_name("productKey", service.optional_string("productKey", body["productKey"],
                                                                               nullable=False) or "")
    if "description" in body:
        description = body["description"]
        if description is not None and not isinstance(description, str):
            raise ValidationFailed("description: must be a string")
        changes.description = (None if description is None
                               else check_name("description", description, templates.DESCRIPTION_MAX_LENGTH,
                                               lines=True))
    if "location" in body:
        changes.location = None if body["location"] is None else service.parse_location("location", body["location"])
    if "vrp" in body:
        changes.vrp = service.policy_name("vrp", body["vrp"])
    for name in ("groups", "licenses"):
        if name in body:
            setattr(changes, name, service.string_list(name, body[name], nullable=False))
    return changes


@router.get("/msteams/templates", summary="Templates of the subscription, with at least the default one (id 0)",
    description="Vendor-notes 2.6: `search` (name).", responses=docs.ok(docs.Templates, "The templates"),
)
async def list_templates(access: _access("list"), uow: UnitOfWorkDep, search: str | None = None) -> dict[str, Any]:
    return {"templates": [render(t) for t in await templates.list_templates(uow.session, access, search)]}


@router.get("/msteams/templates/{template_id}", summary="One template",
    responses=docs.ok(docs.Template, "The template"),
    description="Vendor-notes 2.6: id 0 is the built-in default.",
)
async def get_template(template_id: int, access: _access("list"), uow: UnitOfWorkDep) -> dict[str, Any]:
    return render(await templates.get_template(uow.session, access, template_id))


@router.post("/msteams/templates", status_code=201, summary="Create a template",
    description=f"`name` required. {_CHECKED}",
    openapi_extra=request_body(
        docs.TemplateRequest,
        example={
            "name": "BE-Test", "location": "BE", "vrp": "World-DRaaS", "groups": [],
            "licenses": ["18181a46-0d4e-45cd-891e-60aabd171b4e"]
        }
    ),
    responses=docs.ok(docs.IdOnly, "Created: the template's id", status=201) | docs.MICROSOFT,
)
async def create_template(body: Annotated[Any, Body()], access: _access("create"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> dict[str, int]:
    changes = parse_changes(body, creating=True)
    await templates.check_in_tenant(uow.session, _tenant(access, container), changes)
    return {"id": (await templates.create_template(uow.session, access, changes)).id}


@router.put("/msteams/templates/{template_id}", status_code=204, response_model=None, summary="Update a template",
    description=f"Template 0 (the default) cannot be changed. {_CHECKED}",
    openapi_extra=request_body(docs.TemplateRequest, example={"vrp": "Global"}),
    responses=docs.NO_CONTENT | docs.MICROSOFT,
)
async def update_template(template_id: int, body: Annotated[Any, Body()], access: _access("update"),
                          uow: UnitOfWorkDep, container: ContainerDep) -> None:
    row = await templates.changeable(uow.session, access, template_id)
    changes = parse_changes(body, creating=False)
    await templates.check_in_tenant(uow.session, _tenant(access, container), changes)
    await templates.update_template(uow.session, access, row, changes)


@router.delete("/msteams/templates/{template_id}", status_code=204, response_model=None, summary="Delete a template",
    description="Template 0 (the default) cannot be deleted.", responses=docs.NO_CONTENT,
)
async def delete_template(template_id: int, access: _access("delete"), uow: UnitOfWorkDep) -> None:
    await templates.delete_template(uow.session, access, template_id)
