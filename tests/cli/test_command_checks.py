"""What every command checks before it works, on files only (no server): the data directory comes from
TEAMSVOICE_DATA_DIR unless --data-dir names one."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from teamsvoice.cli import app

NO_DATABASE_URL = {"TEAMSVOICE_DATABASE_URL": None, "TEAMSVOICE_SECRET_KEY": None, "TEAMSVOICE_DATA_DIR": None}


def run(*args: str, env: dict | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env=NO_DATABASE_URL | (env or {}))


def test_the_data_dir_setting_is_every_commands_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where `data` would be made
    configured, given = tmp_path / "configured", tmp_path / "given"
    env = {"TEAMSVOICE_DATA_DIR": str(configured)}
    migrated = run("migrate", env=env)
    assert migrated.exit_code == 0, migrated.stderr
    assert (configured / "teamsvoice.sqlite3").exists() and not (tmp_path / "data").exists()
    checked = run("doctor", "--offline", env=env)
    assert "[ok  ] database" in checked.stdout and str(configured) in checked.stdout
    assert run("migrate", "--data-dir", str(given), env=env).exit_code == 0  # the option wins
    assert (given / "teamsvoice.sqlite3").exists()
    assert not (tmp_path / "data").exists()
