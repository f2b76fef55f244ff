"""The `teamsvoice` command."""

import asyncio
import json
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console

from teamsvoice import demo
from teamsvoice.core.db import create_engine, session_factory, upgrade_database
from teamsvoice.core.security import Keyring, load_or_create_master_key
from teamsvoice.core.errors import DomainError
from teamsvoice.domain.orgs.service import register_redirect_url as register_redirect_url_for
from teamsvoice.settings import Settings

app = typer.Typer(help="teamsvoice: control plane for Microsoft Teams calling.", no_args_is_help=True)
console = Console()


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _app_registration(data_dir: Path) -> dict[str, str]:
    """The embedded default's own app registration in the emulator, created once."""
    path = data_dir / "microsoft-app.json"
    if not path.exists():
        path.write_text(json.dumps({"clientId": str(__import__("uuid").uuid4()), "clientSecret": secrets.token_urlsafe(32)}))
        path.chmod(0o600)
    return json.loads(path.read_text())


def embedded_settings(settings: Settings, emulator_url: str, ca_bundle: Path) -> Settings:
    registration = _app_registration(settings.data_dir)
    return settings.model_copy(update={
        "microsoft_login_url": emulator_url,
        "microsoft_graph_url": f"{emulator_url}/v1.0",
        "microsoft_powershell_url": f"{emulator_url}/_powershell/invoke",
        "microsoft_ca_bundle": str(ca_bundle),
        "microsoft_client_id": registration["clientId"],
        "microsoft_client_secret": registration["clientSecret"],
    })


async def _seed_fusion(settings: Settings, organisation: demo.DemoOrganisation, tenants: list[dict[str, Any]]) -> dict[str, Any]:
    """Fusion logins, tenants and subscriptions, onboarded through the real consent URL and wizard steps."""
    keyring = Keyring(load_or_create_master_key(settings.secret_key, settings.data_dir))
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            seed = await demo.seed_fusion(session, keyring, organisation, tenants)
            await session.commit()
    finally:
        await engine.dispose()
    await asyncio.to_thread(demo.onboard_fusion, settings, keyring, seed)
    return demo.fusion_document(seed)


async def _seed(settings: Settings, emulator_url: str | None) -> dict[str, Any]:
    path = settings.data_dir / demo.CREDENTIALS_FILE
    existing = demo.read_credentials(path)
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            organisation = await demo.seed_organisation(session)
            await session.commit()
    finally:
        await engine.dispose()
    if organisation is None:
        if existing is None:
            raise typer.BadParameter("The database has data but no demo-credentials.json: not reseeding over it")
        return existing
    document: dict[str, Any] = {
        "apiUrl": settings.public_url,
        "masterReseller": organisation.master.wire(),
        "resellers": [r.wire() for r in organisation.resellers],
    }
    if emulator_url:
        tenants = await asyncio.to_thread(demo.seed_microsoft_tenants, emulator_url, settings.microsoft_ca_bundle)
        document["microsoft"] = {"loginUrl": emulator_url, "graphUrl": f"{emulator_url}/v1.0",
                                 "adminUrl": f"{emulator_url}/_admin", "caCertificate": settings.microsoft_ca_bundle,
                                 "tenants": tenants}
        document["fusion"] = await _seed_fusion(settings, organisation, tenants)
    demo.write_credentials(path, document)
    return document


async def _serve(settings: Settings, host: str, port: int, emulator_port: int | None) -> None:
    from teamsvoice.app import create_app

    emulator_server = None
    emulator_url = None
    if settings.microsoft_mode == "emulator":
        from m365_emulator.server import build_uvicorn_server
        from m365_emulator.settings import EmulatorSettings
        from m365_emulator.tls import ensure_tls_material

        emulator_dir = settings.data_dir / "m365-emulator"
        emulator_dir.mkdir(parents=True, exist_ok=True)
        tls = ensure_tls_material(emulator_dir)
        emulator_url = f"https://{_loopback(host)}:{emulator_port}"
        settings = embedded_settings(settings, emulator_url, tls.ca_cert_path)
        emulator_server = build_uvicorn_server(EmulatorSettings(data_dir=emulator_dir, public_url=emulator_url), host, emulator_port)
        emulator_task = asyncio.create_task(emulator_server.serve())
        while not emulator_server.started:
            if emulator_task.done():
                emulator_task.result()
            await asyncio.sleep(0.05)
        await asyncio.to_thread(
            demo.register_application, emulator_url, settings.microsoft_ca_bundle,
            client_id=settings.microsoft_client_id, client_secret=settings.microsoft_client_secret,
            redirect_uri=f"{settings.public_url}/restricted/handleResponse",
        )
    credentials = await _seed(settings, emulator_url)
    api = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_level="info"))
    console.print(f"[bold]teamsvoice[/bold] API            {settings.public_url}  (OpenAPI: {settings.public_url}/docs)")
    if emulator_url:
        console.print(f"Microsoft 365 emulator  {emulator_url}  (Graph: {emulator_url}/v1.0, admin: {emulator_url}/_admin)")
    console.print(f"Database                {settings.effective_database_url}")
    console.print(f"Demo credentials        {settings.data_dir / demo.CREDENTIALS_FILE}")
    console.print(f"Master reseller login   {credentials['masterReseller']['username']}")
    try:
        await api.serve()
    finally:
        if emulator_server is not None:
            emulator_server.should_exit = True
            await emulator_task


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port.")] = 8080,
    data_dir: Annotated[Path, typer.Option(help="Where SQLite files, keys and demo credentials live.")] = Path("data"),
    emulator_port: Annotated[int | None, typer.Option(help="Microsoft 365 emulator port (default: API port + 1).")] = None,
) -> None:
    """Run the API, the Microsoft 365 emulator and the job engine; migrate and seed on first start."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir.resolve())
    if not settings.public_url:
        settings = settings.model_copy(update={"public_url": f"http://{_loopback(host)}:{port}"})
    upgrade_database(settings.effective_database_url)
    asyncio.run(_serve(settings, host, port, emulator_port or port + 1))


@app.command()
def migrate(data_dir: Annotated[Path, typer.Option()] = Path("data")) -> None:
    """Apply database migrations (also done by `serve`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir.resolve())
    upgrade_database(settings.effective_database_url)
    console.print(f"Migrated {settings.effective_database_url}")


@app.command("register-redirect-url")
def register_redirect_url(
    reseller_id: Annotated[int, typer.Argument(help="The reseller whose consent webhooks may go to this URL.")],
    url: Annotated[str, typer.Argument(help="An https URL (prefix) that redirectUrls may start with.")],
    data_dir: Annotated[Path, typer.Option()] = Path("data"),
) -> None:
    """Allow https redirectUrls starting with URL for a reseller (needed unless the URL is loopback)."""
    settings = Settings(data_dir=data_dir.resolve())
    upgrade_database(settings.effective_database_url)
    urls = asyncio.run(_register_redirect_url(settings, reseller_id, url))
    console.print(f"Reseller {reseller_id} redirect URL prefixes: {', '.join(urls)}")


async def _register_redirect_url(settings: Settings, reseller_id: int, url: str) -> list[str]:
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            urls = await register_redirect_url_for(session, reseller_id, url)
            await session.commit()
            return urls
    except DomainError as exc:
        raise typer.BadParameter(exc.message) from exc
    finally:
        await engine.dispose()
