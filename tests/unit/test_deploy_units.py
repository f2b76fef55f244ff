"""The shipped systemd units (deploy/) and README's production example agree: README's nginx example pointed at
10.0.0.11:8080 while the api unit listened on 127.0.0.1 only, and its teamsvoice.env example put comments after values,
which systemd keeps as part of the value (TEAMSVOICE_TRUSTED_PROXIES then no JSON list: exit 2, not restarted)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _block(text: str, after: str, language: str) -> str:
    """The first ```language block after the line starting with `after`."""
    start = text.index(after)
    return text[start:].split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readme_proxy_example_reaches_the_shipped_api_unit() -> None:
    unit = (ROOT / "deploy/teamsvoice-api.service").read_text()
    assert "Environment=TEAMSVOICE_API_HOST=127.0.0.1\n" in unit  # a proxy on the same host, unless the file says
    assert "EnvironmentFile=/etc/teamsvoice/teamsvoice.env\n" in unit  # (which overrides Environment=)
    [start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    listen = re.search(r" --host (\S+) --port (\d+) ", start)
    assert listen and listen.group(1) == "${TEAMSVOICE_API_HOST}", start

    readme = (ROOT / "README.md").read_text()
    env: dict[str, str] = {}
    for line in _block(readme, "### systemd", "sh").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, value = line.split("=", 1)
        assert " #" not in value and not value.endswith(" "), line  # systemd would keep it in the value
        env[key] = value.strip("'")
    nginx = _block(readme, "### Reverse proxy with TLS", "nginx")
    upstream = re.findall(r"^\s*server (\S+):(\d+);", nginx, re.MULTILINE)
    assert upstream and upstream[0] == (env["TEAMSVOICE_API_HOST"], listen.group(2)), (upstream, env)
    proxy = re.search(r"\(nginx on (\S+?),", readme)
    assert proxy and json.loads(env["TEAMSVOICE_TRUSTED_PROXIES"]) == [proxy.group(1)]
