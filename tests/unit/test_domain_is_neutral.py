"""The domain speaks neutrally (issue 11 §1): no module of `domain/` imports an API family (`teamsvoice.api`) or
the web framework (fastapi, starlette), or carries Fusion's numeric error codes; `api/fusion/error_codes.py` alone
turns the domain's named codes into them."""

import ast
from pathlib import Path

from teamsvoice.api.fusion import error_codes

DOMAIN = Path(error_codes.__file__).resolve().parents[2] / "domain"
FUSION_NUMBERS = frozenset(error_codes.NAMED_CODES.values()) | {
    error_codes.INVALID_REQUEST, error_codes.UNAUTHENTICATED, error_codes.FORBIDDEN, error_codes.NOT_FOUND,
    error_codes.CONFLICT, error_codes.PRECONDITION, error_codes.UPSTREAM, error_codes.UPSTREAM_RETRYABLE,
    error_codes.INTERNAL}


def problems(source: str) -> list[str]:
    """What in `source` speaks an API family: imports of teamsvoice.api, fastapi or starlette, Fusion numbers
    written as strings (`"2011"`), and Fusion numbers given as an error's code (`code=2011`, `{"code": 1500}`)."""
    found: list[str] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _forbidden(node.module):
            found.append(f"line {node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: imports {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isdigit() \
                and int(node.value) in FUSION_NUMBERS:
            found.append(f"line {node.lineno}: Fusion code {node.value!r}")
        elif isinstance(node, ast.keyword) and node.arg == "code" and _fusion_int(node.value):
            found.append(f"line {node.lineno}: code={ast.unparse(node.value)}")
        elif isinstance(node, ast.Dict):
            found += [f"line {node.lineno}: \"code\": {ast.unparse(value)}" for key, value in zip(node.keys, node.values)
                      if isinstance(key, ast.Constant) and key.value == "code" and _fusion_int(value)]
    return found


def _forbidden(module: str) -> bool:
    return (module + ".").startswith(("teamsvoice.api.", "fastapi.", "starlette."))


def _fusion_int(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value in FUSION_NUMBERS


def test_the_check_finds_what_it_looks_for() -> None:
    source = ('from teamsvoice.api.fusion.errors import fusion_error\nimport teamsvoice.api\nTAKEN = "2011"\n'
              'raise Conflict("x", code=2011)\nerror = {"code": 1500, "reason": "x"}\nLIMIT = 1000\nkind = "2"\n'
              'from fastapi import Request\nimport teamsvoice.apio\n')
    assert sorted(problems(source)) == ["line 1: imports teamsvoice.api.fusion.errors", "line 2: imports teamsvoice.api",
                                        "line 3: Fusion code '2011'", "line 4: code=2011", "line 5: \"code\": 1500",
                                        "line 8: imports fastapi"]


def test_no_domain_module_imports_an_api_family_or_carries_fusion_codes() -> None:
    modules = sorted(DOMAIN.rglob("*.py"))
    assert len(modules) > 40
    found = {str(path.relative_to(DOMAIN)): problems(path.read_text()) for path in modules}
    assert {name: lines for name, lines in found.items() if lines} == {}
