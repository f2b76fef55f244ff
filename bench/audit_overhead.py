"""What the audit log costs a write: the same writes with the recorder's hooks installed and removed.

    .venv/bin/python bench/audit_overhead.py                      # SQLite file, 2,000 Teams users
    .venv/bin/python bench/audit_overhead.py --users 500 --url postgresql://user@host/db   # an empty database

For each mode it creates an enterprise and N Teams voice users (one transaction per user, as a bulk job's
items commit one by one), then updates each user's number (one transaction each), then deletes them all
with one bulk `delete()`. It runs both modes twice in alternation and prints the second round: the seconds and
per-transaction milliseconds of each phase with and without the hooks, and the audit entries written.
Figures only; nothing is asserted.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from teamsvoice import models  # noqa: F401  (every table, and the recorder's hooks)
from teamsvoice.core.db import create_engine, session_factory, upgrade_database
from teamsvoice.domain.audit import context, recorder
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.domain.provisioning.models import TeamsVoiceUser


def hooks(on: bool) -> None:
    installed = event.contains(Session, "after_flush", recorder._after_flush)
    if on and not installed:
        event.listen(Session, "after_flush", recorder._after_flush)
        event.listen(Session, "do_orm_execute", recorder._bulk_statement)
    if not on and installed:
        event.remove(Session, "after_flush", recorder._after_flush)
        event.remove(Session, "do_orm_execute", recorder._bulk_statement)


async def run(url: str, users: int, label: str) -> dict[str, float]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    figures: dict[str, float] = {}
    scope = context.AuditScope(family=context.CONSOLE, source="bench", actor=context.Actor("bench", reseller_id=None))
    with context.acting(scope):
        async with sessions() as session:
            reseller = Reseller(name=f"Bench {label}", level="RESELLER", registered_redirect_urls=[])
            session.add(reseller)
            await session.flush()
            enterprise = Enterprise(reseller_id=reseller.id, enterprise_name=f"Bench {label}", services=["DIRECT_ROUTING"])
            session.add(enterprise)
            await session.commit()
            enterprise_id = enterprise.id
        started = time.perf_counter()
        ids = []
        for index in range(users):
            async with sessions() as session:
                user = TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name=f"u{index}@{label}.example",
                                      microsoft_user_id=f"{label}-{index}", calling_enabled=False)
                session.add(user)
                await session.commit()
                ids.append(user.id)
        figures["create"] = time.perf_counter() - started
        started = time.perf_counter()
        for index, user_id in enumerate(ids):
            async with sessions() as session:
                user = await session.get(TeamsVoiceUser, user_id)
                user.phone_number, user.calling_enabled = f"+3222{index:06d}", True
                await session.commit()
        figures["update"] = time.perf_counter() - started
        started = time.perf_counter()
        async with sessions() as session:
            await session.execute(delete(TeamsVoiceUser).where(TeamsVoiceUser.enterprise_id == enterprise_id))
            await session.commit()
        figures["bulk delete"] = time.perf_counter() - started
        async with sessions() as session:
            figures["entries"] = await session.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.enterprise_id == enterprise_id)) or 0
    await engine.dispose()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='tv-bench-audit-')) / 'bench.sqlite3'}"
    upgrade_database(url)
    results = {}
    # Twice in alternation (the first round warms the database file and the interpreter); the second counts.
    for label, on in (("warm-without", False), ("warm-with", True), ("without", False), ("with", True)):
        hooks(on)
        results[label] = await run(url, args.users, label)
    hooks(True)
    print(f"{args.users} Teams users, {url.split(':', 1)[0]}")
    for phase in ("create", "update", "bulk delete"):
        per = 1000 / args.users if phase != "bulk delete" else 1000.0
        without, with_ = results["without"][phase], results["with"][phase]
        print(f"  {phase:12} without hooks {without:7.2f} s ({without * per:6.2f} ms each)   "
              f"with hooks {with_:7.2f} s ({with_ * per:6.2f} ms each)   x{with_ / without:4.2f}")
    print(f"  audit entries written with hooks: {int(results['with']['entries'])}, without: {int(results['without']['entries'])}")


if __name__ == "__main__":
    asyncio.run(main())
