"""The package installed the ordinary way (a wheel built from this tree, no editable install, no source
tree beside it) starts on the embedded default and serves the onboarding flow; the CLI answers at once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ctt import enterprise_body, reseller_catalogue
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of the project installed into a directory of its own (its dependencies come from the test
    environment; teamsvoice itself only from the wheel)."""
    work = tmp_path_factory.mktemp("installed")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(work / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next((work / "dist").glob("teamsvoice-*.whl"))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(work / "site"),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    return work


def _env(installed: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMSVOICE_") and k != "PYTHONPATH"}
    return env | {"PYTHONPATH": str(installed / "site")}


def _teamsvoice(installed: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # -P: the working directory is not put on sys.path; it is a directory without sources anyway.
    return subprocess.run([sys.executable, "-P", "-m", "teamsvoice", *args], cwd=installed, env=_env(installed) | (env or {}),
                          capture_output=True, text=True, timeout=timeout)


def test_the_cli_comes_from_the_wheel_and_answers_at_once(installed: Path) -> None:
    where = subprocess.run([sys.executable, "-P", "-c", "import teamsvoice, m365_emulator; print(teamsvoice.__file__)"],
                           cwd=installed, env=_env(installed), capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(installed / "site")), where
    assert (installed / "site" / "teamsvoice" / "migrations" / "versions").is_dir()
    helped = _teamsvoice(installed, "--help", env={"PYTHONPROFILEIMPORTTIME": "1"})  # (stderr: each module imported)
    assert helped.returncode == 0 and "serve" in helped.stdout and "worker" in helped.stdout
    # It answers at once (about 0.2 s): the heavy modules load inside the commands that use them, not for --help.
    imported = {line.split("|")[-1].strip().split(".")[0] for line in helped.stderr.splitlines() if line.startswith("import time:")}
    assert "typer" in imported and not imported & {"sqlalchemy", "dbos", "fastapi", "starlette", "pydantic", "psycopg", "msal"}
    version = _teamsvoice(installed, "--version")
    assert version.returncode == 0 and version.stdout.startswith("teamsvoice ")


async def test_the_installed_package_serves_the_onboarding_flow(installed: Path) -> None:
    port, data_dir = free_port(), installed / "data"
    log = (installed / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-P", "-m", "teamsvoice", "serve", "--port", str(port),
                                "--emulator-port", str(free_port()), "--data-dir", str(data_dir)],
                               cwd=installed, env=_env(installed), stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None and time.monotonic() < deadline, (installed / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        import json

        reseller = json.loads((data_dir / "demo-credentials.json").read_text())["resellers"][0]
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            token = await http.post("/oauth/token", auth=(reseller["clientId"], reseller["clientSecret"]), data={
                "grant_type": "password", "username": reseller["username"], "password": reseller["password"]})
            assert token.status_code == 200, token.text
            assert "server" not in token.headers and token.headers["cache-control"] == "no-store"  # no banner; a secret
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            reseller_id = reseller["resellerId"]
            pbx, sbc = await reseller_catalogue(http, token.json()["access_token"], reseller_id)
            created = await http.post("/reseller/newEnterprise", headers=headers,
                                      json=enterprise_body(reseller_id, "Installed Co", pbx=pbx[:1], sbc=sbc[:1]))
            assert created.status_code == 200, created.text
            action = await http.post("/enterprise/getActionItemUrl", headers=headers, json={
                "actionType": "REGISTRATION", "enterpriseName": "Installed Co", "redirectUrl": "http://127.0.0.1:9/hook"})
            assert action.status_code == 200 and "/oauth2/v2.0/authorize" in action.text, action.text
            # The console's templates and static assets ship in the wheel.
            login = await http.get("/console/login")
            assert login.status_code == 200 and 'name="password"' in login.text, login.text
            script = await http.get("/console/static/htmx.min.js")
            assert script.status_code == 200 and "htmx" in script.text[:200]
            docs = await http.get("/docs")
            assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
            assert (await http.get("/docs-assets/swagger-ui-bundle.js")).status_code == 200
            assert (await http.get("/docs-assets/redoc.standalone.js")).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
