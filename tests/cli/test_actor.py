"""CLI writes name their operator in the audit log: `cli:<OS user>` by default, `cli:<--actor>` when given; the
small admin commands answer --json too."""

import getpass
import json

from sqlalchemy import select

from teamsvoice.domain.audit.models import AuditEntry
from tests.cli.support import teamsvoice
from tests.support.database import in_session


async def _entries(live, url: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    async def read(session) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.action == "reseller.update").order_by(AuditEntry.id))
        return [e for e in rows if url in str(e.after)]

    return await in_session(live, read)


async def test_cli_writes_name_the_operator(live, organisation) -> None:  # type: ignore[no-untyped-def]
    reseller_id = str(organisation.resellers[0].reseller_id)
    named = await teamsvoice(live, "--actor", "alice@provider.example", "register-redirect-url", reseller_id,
                             "https://hooks.alice.example/")
    assert named.returncode == 0, named.stderr
    [entry] = await _entries(live, "hooks.alice.example")
    assert entry.actor == "cli:alice@provider.example" and entry.family == "cli"
    assert entry.source == "teamsvoice register-redirect-url"

    default = await teamsvoice(live, "register-redirect-url", reseller_id, "https://hooks.default.example/", "--json")
    assert default.returncode == 0, default.stderr
    answer = json.loads(default.stdout)
    assert answer["resellerId"] == int(reseller_id) and "https://hooks.default.example/" in answer["redirectUrlPrefixes"]
    [entry] = await _entries(live, "hooks.default.example")
    assert entry.actor == f"cli:{getpass.getuser()}"

    blank = await teamsvoice(live, "--actor", " ", "register-redirect-url", reseller_id, "https://hooks.blank.example/")
    assert blank.returncode == 2 and "--actor must name the operator" in blank.stderr
    assert not await _entries(live, "hooks.blank.example")


async def test_admin_commands_answer_json(live) -> None:  # type: ignore[no-untyped-def]
    migrated = await teamsvoice(live, "migrate", "--json")
    assert migrated.returncode == 0, migrated.stderr
    assert "migrated" in json.loads(migrated.stdout) and "password" not in migrated.stdout.lower()
    no_sbc = await teamsvoice(live, "sbc", "init-db", "--json", env={"TEAMSVOICE_SBC_KAMAILIO_DB_URL": "",
                                                                   "TEAMSVOICE_SBC_KAMAILIO_RPC_URL": ""})
    assert no_sbc.returncode == 2 and "no SBC is attached" in no_sbc.stderr
