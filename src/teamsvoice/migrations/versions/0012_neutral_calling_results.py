"""Calling jobs store neutral results: each user's result in `calling_jobs.results` was kept under
ConnecttoTeams' field name `userPrincipalName` and a Unified App job's published app (`detail["app"]`) under
`teamsAppId`; they become `user_principal_name` and `app_id`, which api/connecttoteams renders back to the same
answer.

Revision ID: 0012_neutral_calling_results
Revises: 0002_calling (the calling tables' revision: a branch of its own)
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012_neutral_calling_results"
down_revision = "0002_calling"
branch_labels = None
depends_on = None

BATCH = 500
# (stored before this revision, stored from it on): a user's result, and the published app.
RESULT_NAME = ("userPrincipalName", "user_principal_name")
APP_NAME = ("teamsAppId", "app_id")

jobs = sa.table("calling_jobs", sa.column("id", sa.Integer), sa.column("results", sa.JSON),
                sa.column("detail", sa.JSON))


def renamed(record: Any, old: str, new: str) -> Any:
    """`record` with its field `old` named `new`, first and the rest in order (anything else as it is)."""
    if not isinstance(record, dict) or old not in record or new in record:
        return record
    return {new: record[old], **{name: value for name, value in record.items() if name != old}}


def convert_results(results: Any, old: str, new: str) -> Any:
    if not isinstance(results, dict):
        return results
    return {upn: renamed(result, old, new) for upn, result in results.items()}


def convert_detail(detail: Any, old: str, new: str) -> Any:
    if not isinstance(detail, dict) or not isinstance(detail.get("app"), dict):
        return detail
    return {**detail, "app": renamed(detail["app"], old, new)}


def _convert(forward: bool) -> None:
    (result_old, result_new), (app_old, app_new) = (RESULT_NAME, APP_NAME) if forward else (
        RESULT_NAME[::-1], APP_NAME[::-1])
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(sa.select(jobs.c.id, jobs.c.results, jobs.c.detail).where(
            jobs.c.id > after).order_by(jobs.c.id).limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            results = convert_results(row.results, result_old, result_new)
            detail = convert_detail(row.detail, app_old, app_new)
            values = {name: value for name, value, before in (("results", results, row.results),
                                                               ("detail", detail, row.detail)) if value != before}
            if values:
                connection.execute(sa.update(jobs).where(jobs.c.id == row.id).values(**values))
        after = rows[-1].id


def upgrade() -> None:
    _convert(forward=True)


def downgrade() -> None:
    _convert(forward=False)
