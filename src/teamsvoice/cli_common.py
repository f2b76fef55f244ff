"""What every `teamsvoice` command shares (cli.py, operator_cli.py): the --data-dir option, the settings it
reads, and the one-line refusal (exit 2). Light: typer only, so `teamsvoice --help` stays instant."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from teamsvoice.settings import Settings

# No default of its own: without the option, the data directory is the settings' (TEAMSVOICE_DATA_DIR, else `data`;
# settings.py names both), so a command never overrides the environment with a default.
DataDir = Annotated[Path | None, typer.Option(
    help="Where SQLite files, keys and demo credentials live (default: TEAMSVOICE_DATA_DIR, else ./data).",
    show_default=False)]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"teamsvoice: {message}", err=True)
    raise typer.Exit(code)


def settings_for(data_dir: Path | None, **updates: Any) -> "Settings":
    """The settings of the TEAMSVOICE_* variables, with the data directory of --data-dir when given (resolved)."""
    from pydantic import ValidationError

    from teamsvoice.settings import Settings

    try:
        settings = Settings(**({} if data_dir is None else {"data_dir": data_dir}))
    except ValidationError as exc:
        error = exc.errors()[0]
        fail(f"setting TEAMSVOICE_{str(error['loc'][0]).upper()} is invalid: {error['msg']}")
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve(), **updates})
    settings.__dict__.pop("effective_database_url", None)  # (a cached property: computed again from the copy)
    return settings


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def operator_settings(data_dir: Path | None) -> "Settings":
    """The settings of a command that works on an existing teamsvoice database: every command but the servers,
    `migrate`, `restore`, `doctor` (which reports it), `backup` (which says it in its own words) and `sbc init-db`
    (Kamailio's database only). On SQLite, a database file that does not exist is refused
    (exit 2) before anything is made: opening it would create an empty database (and the command give a believable
    empty answer, "No PBX users", from a data directory that is not the server's). A database that cannot be
    reached is refused as `migrate` and the servers refuse it (`runner.check_database`: one line, within seconds)."""
    from teamsvoice import runner

    settings = settings_for(data_dir)
    if settings.is_sqlite and not sqlite_path(settings.effective_database_url).is_file():
        if settings.database_url:
            fail(f"no teamsvoice database at {sqlite_path(settings.effective_database_url)}: check TEAMSVOICE_DATABASE_URL")
        fail(f"no teamsvoice database in {settings.data_dir}; give --data-dir or TEAMSVOICE_DATA_DIR (the server's)")
    try:
        runner.check_database(settings.effective_database_url)
    except runner.StartupError as exc:
        fail(str(exc))
    return settings
