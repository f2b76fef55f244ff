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
