"""The console's audit log pages as GET /api/teamsvoice/v1/audit does (keyset cursors, api/teamsvoice/paging.py): it
paged by offset and counted the whole log on every page, so an entry recorded while staff paged pushed the next page
back (its first entry was the last one already shown); now Older and Newer follow an entry's time and id, and the log
is counted on the first page only."""

import html
import re
import uuid
from datetime import timedelta

import httpx

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.audit.models import AuditEntry
from tests.support.browser import forms, submit
from tests.support.database import in_session


def _link(text: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}"', text)
    return html.unescape(found.group(1)) if found else None


def _shown(text: str) -> list[int]:
    return list(dict.fromkeys(int(i) for i in re.findall(r'href="/console/audit/(\d+)"', text)))


async def test_older_and_newer_pages_show_every_entry_once(live, organisation) -> None:  # type: ignore[no-untyped-def]
    staff = organisation.resellers[0]
    action = f"test.console{uuid.uuid4().hex[:8]}"
    now = utcnow()

    async def record(session, count: int, newest: bool = False) -> list[int]:  # type: ignore[no-untyped-def]
        rows = [AuditEntry(at=now + timedelta(seconds=1) if newest else now - timedelta(seconds=count - i), family="system",
                           actor="paging test", action=action, aggregate="test", owner_reseller_id=staff.reseller_id)
                for i in range(count)]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]

    recorded = await in_session(live, lambda session: record(session, 120))
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        form_page = await browser.get("/console/login")
        signed = await submit(browser, str(form_page.url), forms(form_page.text)[0], username=staff.username,
                              password=staff.password)
        assert signed.status_code == 303, signed.text
        first = await browser.get("/console/audit", params={"action": action})
        assert first.status_code == 200 and "120 entries, page 1 of 3" in first.text, first.text
        assert _link(first.text, "prev") is None
        pages = [first]
        while (older := _link(pages[-1].text, "next")) is not None:
            await in_session(live, lambda session: record(session, 1, newest=True))  # recorded while staff page
            pages.append(await browser.get(older))
            assert pages[-1].status_code == 200, pages[-1].text
            assert len(pages) < 10
        shown = [i for page in pages for i in _shown(page.text)]
        assert shown == list(reversed(recorded)), shown  # each once, newest first, none of those recorded meanwhile
        assert [len(_shown(page.text)) for page in pages] == [50, 50, 20]
        assert "120 entries, page 3 of 3" in pages[-1].text  # the count of the first page, carried on

        # Newer from the last page: the second page again (entries recorded since are newer than it).
        back = await browser.get(_link(pages[-1].text, "prev"))
        assert back.status_code == 200 and _shown(back.text) == _shown(pages[1].text) and "page 2 of 3" in back.text
        top = await browser.get(_link(back.text, "prev"))
        assert top.status_code == 200 and _shown(top.text)[:50] == _shown(pages[0].text), top.text
