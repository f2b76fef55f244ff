"""What every `teamsvoice` command shares (cli.py, operator_cli.py): the --data-dir option, the settings it
reads, and the one-line refusal (exit 2). Light: typer only, so `teamsvoice --help` stays instant."""

import json
import re
from pathlib import Path
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from teamsvoice.core.security import Keyring
    from teamsvoice.settings import Settings

T = TypeVar("T")

# No default of its own: without the option, the data directory is the settings' (TEAMSVOICE_DATA_DIR, else `data`;
# settings.py names both), so a command never overrides the environment with a default.
DataDir = Annotated[Path | None, typer.Option(
    help="Where SQLite files, keys and demo credentials live (default: TEAMSVOICE_DATA_DIR, else ./data).",
    show_default=False)]
# The bounds of an id typed as an argument or option: the id columns are PostgreSQL's `integer` (32 bits; no SQLite
# row has a larger one: core.limits.INTEGER_MAX, not imported: pydantic would slow `--help`). A larger one reached the
# database: past 64 bits an OverflowError traceback, exit 1, and on PostgreSQL past 32 bits "integer out of range".
ID_MIN, ID_MAX = 1, 2**31 - 1


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"teamsvoice: {message}", err=True)
    raise typer.Exit(code)


def run_command(work: Coroutine[Any, Any, T]) -> T:
    """Runs a command's work on the database (and Microsoft) to its end. What gives it up is said in one line, exit 2:
    a domain error as its message, and a transient database failure (`core.db.is_transient_database_error`: stopped
    or restarting, a deadlock lost, a lock or pool timeout) as `core.db.DATABASE_BUSY`, as the API answers it 503.
    Every command that works on the database runs through here (`plan` and `apply` printed a traceback, exit 1)."""
    import asyncio

    from teamsvoice.core.db import DATABASE_BUSY, is_transient_database_error
    from teamsvoice.core.errors import DomainError

    try:
        return asyncio.run(work)
    except DomainError as exc:
        fail(exc.message)
    except Exception as exc:
        if is_transient_database_error(exc):  # not done, and worth trying again: said in one line
            fail(DATABASE_BUSY)
        raise


def settings_for(data_dir: Path | None, **updates: Any) -> "Settings":
    """The settings of the TEAMSVOICE_* variables, with the data directory of --data-dir when given (resolved)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from teamsvoice.settings import Settings

    try:
        settings = Settings(**({} if data_dir is None else {"data_dir": data_dir}))
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["type"] == "list_type":  # JSON, but not a list ("[...]" in quotes escaped within)
            fail(_not_a_list(str(error["loc"][0])))
        fail(f"setting TEAMSVOICE_{str(error['loc'][0]).upper()} is invalid: {error['msg']}")
    except SettingsError as exc:  # a list setting that is not JSON: a traceback, exit 1, before
        found = re.search(r'field "(\w+)"', str(exc))  # (its message names the field only)
        fail(_not_a_list(found.group(1)) if found else f"a TEAMSVOICE_* setting is invalid: {exc}")
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve(), **updates})
    settings.__dict__.pop("effective_database_url", None)  # (a cached property: computed again from the copy)
    return settings


def _not_a_list(field: str) -> str:
    """A list setting (TEAMSVOICE_TRUSTED_PROXIES, _CORS_ALLOWED_ORIGINS, _SBC_MICROSOFT_PROXIES) whose value is not a
    JSON list, said with the fix written from the value. A value in quotes is the common case: docker's and podman's
    --env-file keep them (systemd's EnvironmentFile and a shell remove them)."""
    import os

    name = f"TEAMSVOICE_{field.upper()}"
    value = next((v for k, v in os.environ.items() if k.upper() == name), "").strip()
    inner = [value[1:-1]] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else []
    try:
        decoded = json.loads(value)
    except ValueError:
        decoded = None
    if isinstance(decoded, str):  # a JSON string: quotes escaped within
        inner.append(decoded)
    for unquoted in inner:
        try:
            if isinstance(json.loads(unquoted), list):
                return (f"setting {name} is invalid: its value is in quotes ({value}), as a docker or podman --env-file "
                        f"keeps them: write {name}={unquoted}")
        except ValueError:
            pass
    items = [] if decoded is not None else [item.strip() for item in (inner[0] if inner else value).split(",")]
    example = json.dumps([item for item in items if item] or ["..."]) if value else "[] (none; or leave it unset)"
    return f"setting {name} is invalid: it takes a JSON list, e.g. {name}={example}"


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def operator_settings(data_dir: Path | None) -> "Settings":
    """The settings of a command that works on an existing teamsvoice database, and the checks of that database
    before the command opens it: every command but the servers and `migrate` (which migrate it), `restore`, `doctor`
    (which reports it), `backup` (which says it in its own words) and `sbc init-db` (Kamailio's database only). On
    SQLite, a database file that does not exist is refused (exit 2) before anything is made: opening it would create
    an empty database (and the command give a believable empty answer, "No PBX users", from a data directory that is
    not the server's). A database that cannot be reached is refused as `migrate` and the servers refuse it
    (`runner.check_database`: one line, within seconds), and so is one not at this release's migrations
    (`runner.check_migrated`): no command but `migrate` and the servers migrates (`plan`, `drift` and others did), and
    none works on tables of another release's shape (`tenants`, `jobs`, `bulk` and `users` were not checked)."""
    from teamsvoice import runner

    settings = settings_for(data_dir)
    if settings.is_sqlite and not sqlite_path(settings.effective_database_url).is_file():
        if settings.database_url:
            fail(f"no teamsvoice database at {sqlite_path(settings.effective_database_url)}: check TEAMSVOICE_DATABASE_URL")
        fail(f"no teamsvoice database in {settings.data_dir}; give --data-dir or TEAMSVOICE_DATA_DIR (the server's)")
    try:
        runner.check_database(settings.effective_database_url)
        runner.check_migrated(settings.effective_database_url)
    except runner.StartupError as exc:
        fail(str(exc))
    return settings


def operator_keyring(settings: "Settings") -> "Keyring":
    """The servers' secret key, for a command that reads what they sealed (`sbc status`: the SIP passwords) or starts
    the job engine to hand work over (`bulk import`, `jobs retry`, `jobs cancel`, `apply`): TEAMSVOICE_SECRET_KEY,
    else the data directory's `secret.key` (`core.security.load_master_key`). Without either, refused in one line
    (exit 2), creating nothing: the commands wrote a new key into a data directory that had none (an admin host of a
    PostgreSQL deployment, whose key is given by the setting), one the servers do not use. Only the servers create
    it, at their first start."""
    from teamsvoice.core.security import Keyring, load_master_key

    path = settings.data_dir / "secret.key"
    try:
        master = load_master_key(settings.secret_key, settings.data_dir)
    except OSError as exc:
        fail(f"cannot read the secret key {path}: {exc.strerror}")
    except ValueError:
        fail(f"{path} holds no secret key teamsvoice wrote: give the server's (TEAMSVOICE_SECRET_KEY or secret.key)")
    if master is None:
        fail(f"no secret key: TEAMSVOICE_SECRET_KEY is not set and {path} does not exist; run it with the server's "
             f"TEAMSVOICE_SECRET_KEY (or, when the server has none, its --data-dir, whose secret.key it uses)")
    return Keyring(master)


# The embedded default's Microsoft: `serve` starts the emulator at an address it chooses at each start (--emulator-port,
# else API port + 1) with an app registration of its own; it records both in its data directory, so that commands that
# ask Microsoft themselves (`doctor`, `users export`, `plan`, `apply`, `drift --scan`) reach the same emulator as it.
APP_REGISTRATION_FILE = "microsoft-app.json"
EMULATOR_ADDRESS_FILE = Path("m365-emulator") / "address.json"


def embedded_settings(settings: "Settings", emulator_url: str, ca_bundle: Path,
                      registration: dict[str, str]) -> "Settings":
    return settings.model_copy(update={
        "microsoft_login_url": emulator_url,
        "microsoft_graph_url": f"{emulator_url}/v1.0",
        "microsoft_powershell_url": f"{emulator_url}/_powershell/invoke",
        "microsoft_ca_bundle": str(ca_bundle),
        "microsoft_client_id": registration["clientId"],
        "microsoft_client_secret": registration["clientSecret"],
    })


def record_emulator_address(data_dir: Path, emulator_url: str, ca_bundle: Path) -> None:
    path = data_dir / EMULATOR_ADDRESS_FILE
    path.write_text(json.dumps({"url": emulator_url, "caCertificate": str(ca_bundle)}))


def embedded_microsoft(settings: "Settings") -> "Settings":
    """On the embedded default (emulator mode, no app registration in the settings): the Microsoft settings `serve`
    uses, from its data directory (its app registration and its emulator's address of its last start). Settings
    that name an app registration, and a data directory `serve` never ran in, are left as they are."""
    if settings.microsoft_mode != "emulator" or settings.microsoft_client_id:
        return settings
    try:
        registration = json.loads((settings.data_dir / APP_REGISTRATION_FILE).read_text())
        address = json.loads((settings.data_dir / EMULATOR_ADDRESS_FILE).read_text())
        return embedded_settings(settings, str(address["url"]), Path(address["caCertificate"]),
                                 {"clientId": str(registration["clientId"]), "clientSecret": str(registration["clientSecret"])})
    except (OSError, ValueError, KeyError, TypeError):
        return settings


def microsoft_settings(settings: "Settings") -> "Settings":
    """The Microsoft settings of a command that asks Microsoft itself (`plan`, `apply`, `drift --scan`, `users
    export`): the server's, or beside the embedded default those `serve` recorded (`embedded_microsoft`). In emulator
    mode with neither, refused in one line saying where they come from: the connector said "Teams PowerShell is not
    configured (TEAMSVOICE_MICROSOFT_POWERSHELL_URL)", one setting of six, and `drift --scan` recorded that as each
    tenant's failed scan. (In cloud mode the connector names what is missing: `PwshConfig.of_settings`.)"""
    settings = embedded_microsoft(settings)
    if settings.microsoft_mode == "emulator" and not settings.microsoft_client_id:
        fail("no Microsoft to ask: `teamsvoice serve` has not recorded its Microsoft 365 emulator in this data directory "
             "(start it there), and no app registration is set (TEAMSVOICE_MICROSOFT_LOGIN_URL, _GRAPH_URL, "
             "_POWERSHELL_URL, _CA_BUNDLE, _CLIENT_ID and _CLIENT_SECRET, as the server has them)")
    return settings
