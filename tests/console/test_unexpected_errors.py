"""An unexpected failure on a console page is answered as the console's other errors are, a page for a person
(HTML, 500), not an API family's JSON envelope; the details go to the server log only."""

import httpx
import pytest

from teamsvoice.console import pages


@pytest.mark.any_backend  # nothing of the database: the live server's error handling
async def test_an_unexpected_failure_on_a_console_page_is_an_html_page(client: httpx.AsyncClient,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(pages, "page", broken)
    answer = await client.get("/console/login")
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    assert "Something went wrong on our side; it has been logged." in answer.text
    assert "secret detail" not in answer.text
