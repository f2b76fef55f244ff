"""The bulk CSV of the console and of `teamsvoice bulk import`: its columns, the per-row checks shown before anything
runs, and the results file. (In the domain, not the console package: the CLI imports it without the console's
pages and the API they render, two seconds of start-up.)

A row becomes one item of a Fusion bulk job (`domain/teams_users/bulk.py`), so the job applies exactly what
the preview showed; the checks here are the ones that need no call to Microsoft (the item's fields, the
number belonging to the subscription and being free); Microsoft's own refusals show up per item as the job runs.
"""

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.spreadsheet import csv_writer
from teamsvoice.domain.fusion import numbers
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import bulk
from teamsvoice.domain.teams_users.models import FusionBulkItem

# CSV column -> bulk item field. Lists (groups, licenses) are separated by ";" inside their cell.
COLUMNS = {
    "upn": "the user's sign-in name (name@domain), required",
    "number": "a free number of this subscription in E.164 (+32...), optional",
    "vrp": "voice routing policy name, optional",
    "country": "usage location, ISO 3166 alpha-2 (BE), optional",
    "displayName": "new display name, optional",
    "groups": "groups to add, by id or name, separated by ;",
    "licenses": "licences to add, by skuId or skuPartNumber, separated by ;",
}
LIST_COLUMNS = ("groups", "licenses")
TEMPLATE = ",".join(COLUMNS) + "\r\n" + "alice@contoso.example,+3222000000,Belgium-National,BE,,,\r\n"


def _item(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for column in COLUMNS:
        value = (row.get(column) or "").strip()
        if not value:
            continue
        item[column] = [v.strip() for v in value.split(";") if v.strip()] if column in LIST_COLUMNS else value
    return item


_CANONICAL = {name.lower(): name for name in COLUMNS}


def parse_csv(text: str) -> list[tuple[dict[str, str], int, int]]:
    """Each row (column -> cell) with how many cells it has that no column names (not empty ones: a spreadsheet's
    trailing commas) and the line of the file it starts on (blank lines and cells of several lines counted, as an
    editor numbers them). Column names are matched ignoring case (`UPN`). A quote left open is refused (strict): it
    would take the rest of the file into one cell."""
    if not text.strip():
        raise ValidationFailed("CSV: the file is empty; download the template for the columns")
    reader = csv.DictReader(io.StringIO(text), strict=True)
    headers = [h.strip() for h in reader.fieldnames or []]
    if "upn" not in (h.lower() for h in headers):
        first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
        if ";" in first and "upn" in first.lower():
            raise ValidationFailed("CSV: the columns are separated by ';' (a spreadsheet's regional setting): save the "
                                   "file as CSV with commas (\"CSV UTF-8\"), or download the template")
        raise ValidationFailed(f"CSV: the first line must name the columns, with at least upn (columns: {', '.join(COLUMNS)})")
    unknown = [h for h in headers if h and h.lower() not in _CANONICAL]
    if unknown:
        raise ValidationFailed(f"CSV: unknown column {unknown[0]} (columns: {', '.join(COLUMNS)})")
    reader.fieldnames = [_CANONICAL.get(h.lower(), h) for h in headers]
    rows: list[tuple[dict[str, str], int, int]] = []
    read_to = reader.line_num  # the last line of the header, then of the last row read
    try:
        for row in reader:
            extra = sum(1 for cell in row.get(None) or [] if cell.strip())  # type: ignore[call-overload]
            cells = {(k or "").strip(): v or "" for k, v in row.items() if not isinstance(v, list)}
            # The reader stands on the row's last line: a cell of several lines started it earlier.
            line = reader.line_num - sum(v.count("\n") for v in cells.values())
            rows.append((cells, extra, line))
            read_to = reader.line_num
    except csv.Error as exc:  # a field longer than the csv module's limit (131,072 characters), a quote left open
        raise ValidationFailed(f"CSV: line {read_to + 1}: {exc}") from None
    if not rows:
        raise ValidationFailed("CSV: no rows after the header line; add one row per user")
    if len(rows) > bulk.MAX_ITEMS:
        raise ValidationFailed(f"CSV: at most {bulk.MAX_ITEMS} rows per job")
    return rows


async def preview_rows(session: AsyncSession, access: SubscriptionAccess, text: str) -> list[dict[str, Any]]:
    """Each row with its bulk item and the reasons (in words) it would be refused; nothing is changed."""
    rows = parse_csv(text)
    items = [_item(row) for row, _extra, _line in rows]
    wanted = []
    for item in items:
        try:
            wanted.append(bulk.parse_item({"number": item["number"]}).phone_number if "number" in item else None)
        except ValidationFailed:
            wanted.append(None)
    held = await numbers.holders(session, access, [n for n in wanted if n])
    ours = await numbers.in_inventory(session, access, [n for n in wanted if n])
    seen_upns: dict[str, int] = {}
    seen_numbers: dict[str, int] = {}
    result = []
    for index, (item, number) in enumerate(zip(items, wanted, strict=True)):
        line, errors = rows[index][2], []
        if rows[index][1]:
            errors.append(f"the row has {rows[index][1]} cell(s) more than the header line names")
        upn = item.get("upn", "")
        if "@" not in upn:
            errors.append("upn: a user principal name (name@domain) is required")
        elif upn.lower() in seen_upns:
            errors.append(f"upn: {upn} is already on line {seen_upns[upn.lower()]}")
        try:
            bulk.parse_item(item)
        except ValidationFailed as exc:
            errors.append(exc.message)
        if number:
            if number not in ours:
                errors.append(f"number: {numbers.not_in_subscription(number).message}")
            else:
                holder = held.get(number)
                if holder is not None and holder.user.user_principal_name.lower() != upn.lower():
                    errors.append(f"number: {number} is already assigned to {holder.user.user_principal_name}")
                elif number in seen_numbers:
                    errors.append(f"number: {number} is already on line {seen_numbers[number]}")
        if not errors:  # a row left out (it has errors) takes neither its user nor its number from a later row
            seen_upns[upn.lower()] = line
            if number:
                seen_numbers[number] = line
        result.append({"line": line, "upn": upn, "item": item, "errors": errors})
    return result


async def results_csv(items: AsyncIterator[FusionBulkItem]) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["upn", "status", "attempts", "error"])
    yield out.getvalue()
    async for item in items:
        out.seek(0)
        out.truncate()
        error = (item.error or {}).get("message", "") if isinstance(item.error, dict) else str(item.error or "")
        writer.writerow([item.upn, item.status, item.attempts, error])
        yield out.getvalue()
