"""Scope strings as Entra v2 reads them: OIDC names, unqualified Graph names, `<resource>/<scope>`."""

from dataclasses import dataclass, field

from ..catalog import GRAPH_APP_ID, GRAPH_RESOURCE, TEAMS_ADMIN_APP_ID

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


@dataclass(frozen=True)
class Resource:
    app_id: str
    audience: str
    display_name: str
    identifiers: frozenset[str]

    def qualify(self, scope: str) -> str:
        """How the scope appears in a token response: Graph's unqualified, others prefixed."""
        return scope if self.app_id == GRAPH_APP_ID else f"{self.app_id}/{scope}"


GRAPH = Resource(
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    "Microsoft Graph",
    frozenset({GRAPH_RESOURCE, GRAPH_APP_ID, "graph.microsoft.com", "https://graph.microsoft.com/"}),
)
TEAMS_ADMIN = Resource(
    TEAMS_ADMIN_APP_ID,
    TEAMS_ADMIN_APP_ID,
    "Skype and Teams Tenant Admin API",
    frozenset({TEAMS_ADMIN_APP_ID, f"api://{TEAMS_ADMIN_APP_ID}"}),
)
RESOURCES = {resource.app_id: resource for resource in (GRAPH, TEAMS_ADMIN)}

# Graph delegated permissions a user may consent to alone; everything else ending in ".All", the
# Directory.* family and every Teams admin API scope needs an administrator.
_USER_CONSENTABLE = frozenset({"User.Read", "User.ReadBasic.All", "email", "profile", "openid", "offline_access"})


class ScopeError(ValueError):
    """A scope names a resource the emulator does not know."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


@dataclass
class ScopeRequest:
    oidc: set[str] = field(default_factory=set)
    # resource app id -> scope names without the resource prefix (".default" included as such)
    by_resource: dict[str, list[str]] = field(default_factory=dict)

    def resources(self) -> list[Resource]:
        return [RESOURCES[app_id] for app_id in self.by_resource]


def resource_for(identifier: str) -> Resource | None:
    for resource in RESOURCES.values():
        if identifier in resource.identifiers or identifier.rstrip("/") in resource.identifiers:
            return resource
    return None


def parse_scopes(raw: str) -> ScopeRequest:
    request = ScopeRequest()
    for scope in raw.split():
        if scope in OIDC_SCOPES:
            request.oidc.add(scope)
            continue
        if "/" in scope:
            identifier, _, name = scope.rpartition("/")
            resource = resource_for(identifier)
            if resource is None or not name:
                raise ScopeError(scope)
        else:
            resource, name = GRAPH, scope
        names = request.by_resource.setdefault(resource.app_id, [])
        if name not in names:
            names.append(name)
    return request


def needs_admin_consent(resource_app_id: str, scope: str) -> bool:
    if resource_app_id == TEAMS_ADMIN_APP_ID:
        return True
    if scope in _USER_CONSENTABLE:
        return False
    return scope.endswith(".All") or scope.startswith("Directory.")
