"""The domain reaches Microsoft through typed ports only (docs/architecture.md): no module under domain/ imports
a concrete microsoft/ adapter, and none touches a connection's transport (`.graph`, `.cmdlets`). Walks the
source's syntax trees, so a new import or raw request anywhere in domain/ fails here. And the adapters and the
in-memory fakes (tests/unit/tenant_fakes.py) have every method of their port."""

import ast
import inspect
from pathlib import Path

import teamsvoice
from teamsvoice.microsoft import ports
from teamsvoice.microsoft.directory_ports import DirectoryAdministration

DOMAIN = Path(teamsvoice.__file__).parent / "domain"
PORTS = {"teamsvoice.microsoft.ports", "teamsvoice.microsoft.calling_ports", "teamsvoice.microsoft.directory_ports"}
# Imports of an adapter not yet behind a port (none now; an entry must go when its import goes: the test says so).
KNOWN: set[tuple[str, str]] = set()
TRANSPORT = {"graph", "cmdlets"}


def _trees(root: Path = DOMAIN) -> list[tuple[str, ast.Module]]:
    return [(path.relative_to(root).as_posix(), ast.parse(path.read_text(), str(path)))
            for path in sorted(root.rglob("*.py"))]


def _microsoft_imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "teamsvoice.microsoft":  # from teamsvoice.microsoft import x
                found.update(f"teamsvoice.microsoft.{alias.name}" for alias in node.names)
            elif node.module.startswith("teamsvoice.microsoft."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("teamsvoice.microsoft"))
    return found


def test_domain_modules_import_only_the_microsoft_ports() -> None:
    trees = _trees()
    assert len(trees) > 40  # the walk found the domain
    used = {(name, module) for name, tree in trees for module in _microsoft_imports(tree) if module not in PORTS}
    assert used - KNOWN == set(), "domain/ must use microsoft/ports.py (add a port), not an adapter"
    assert KNOWN - used == set(), "an import listed in KNOWN is gone: remove it from KNOWN"


def test_domain_modules_never_touch_a_connections_transport() -> None:
    raw = [f"{name}:{node.lineno} .{node.attr}" for name, tree in _trees() for node in ast.walk(tree)
           if isinstance(node, ast.Attribute) and node.attr in TRANSPORT]
    assert raw == [], "raw Graph requests or cmdlets in domain/: add the operation to a port in microsoft/"


def test_api_and_console_never_touch_a_connections_transport() -> None:
    """The API families and the console are translations: they reach Microsoft through the same ports."""
    package = DOMAIN.parent
    trees = [(f"{part}/{name}", tree) for part in ("api", "console") for name, tree in _trees(package / part)]
    assert len(trees) > 30
    raw = [f"{name}:{node.lineno} .{node.attr}" for name, tree in trees for node in ast.walk(tree)
           if isinstance(node, ast.Attribute) and node.attr in TRANSPORT]
    assert raw == [], "raw Graph requests or cmdlets in api/ or console/: use the connection's ports"


def test_the_walk_sees_an_adapter_import_and_a_raw_cmdlet() -> None:
    source = ("from teamsvoice.microsoft.directory import DirectoryAdmin\nfrom teamsvoice.microsoft import graph\n"
              "async def f(c):\n    await c.cmdlets.run('Get-CsOnlineUser', {})\n")
    tree = ast.parse(source)
    assert _microsoft_imports(tree) == {"teamsvoice.microsoft.directory", "teamsvoice.microsoft.graph"}
    assert [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in TRANSPORT] == ["cmdlets"]


def _methods(port: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(value) for name, value in vars(port).items()
            if callable(value) and not name.startswith("_")}


def _differences(port: type, implementation: type) -> list[str]:
    """What `implementation` lacks of `port`: a method, or a parameter by name and kind."""
    found = []
    for name, wanted in _methods(port).items():
        method = getattr(implementation, name, None)
        if method is None:
            found.append(f"{implementation.__name__}.{name} is missing")
            continue
        have = inspect.signature(method).parameters
        for parameter in wanted.parameters.values():
            if parameter.name == "self":
                continue
            if parameter.name not in have or have[parameter.name].kind != parameter.kind:
                found.append(f"{implementation.__name__}.{name} has no {parameter.kind.description} "
                             f"parameter {parameter.name}")
    return found


def _pairs() -> list[tuple[type, type]]:
    from teamsvoice.microsoft.connector import MicrosoftConnector
    from teamsvoice.microsoft.directory import DirectoryAdmin
    from teamsvoice.microsoft.emergency_locations import CmdletEmergencyLocations
    from teamsvoice.microsoft.identity import MicrosoftIdentity
    from teamsvoice.microsoft.resource_accounts import CmdletResourceAccounts
    from teamsvoice.microsoft.teams_admin import TeamsAdminAdapter
    from tests.unit import tenant_fakes

    return [
        (ports.Connector, MicrosoftConnector), (ports.Connector, tenant_fakes.FakeConnector),
        (DirectoryAdministration, DirectoryAdmin), (DirectoryAdministration, tenant_fakes.FakeDirectory),
        (ports.Directory, tenant_fakes.FakeDirectoryReads),
        (ports.ResourceAccounts, CmdletResourceAccounts), (ports.ResourceAccounts, tenant_fakes.FakeResourceAccounts),
        (ports.EmergencyLocations, CmdletEmergencyLocations),
        (ports.EmergencyLocations, tenant_fakes.FakeEmergencyLocations),
        (ports.TeamsAdmin, TeamsAdminAdapter), (ports.TeamsAdmin, tenant_fakes.FakeTeamsAdmin),
        (ports.SignIn, MicrosoftIdentity),
    ]


def test_adapters_and_fakes_implement_their_ports() -> None:
    assert [d for port, implementation in _pairs() for d in _differences(port, implementation)] == []


def test_a_missing_method_or_parameter_is_seen() -> None:
    class Partial:
        async def create(self, user_principal_name: str, display_name: str) -> str: ...

    assert _differences(ports.ResourceAccounts, Partial) == [
        "Partial.create has no positional or keyword parameter application_id", "Partial.get is missing",
        "Partial.update is missing", "Partial.all is missing"]
