"""How the emulator's own server is configured (m365_emulator/server.build_uvicorn_server)."""

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from m365_emulator.server import EmulatorServer


def test_the_emulator_believes_no_forwarded_header(emulator: EmulatorServer) -> None:
    """The emulator is never behind a reverse proxy: uvicorn's proxy_headers default believed X-Forwarded-For and
    X-Forwarded-Proto from loopback, so any local process could claim any address or scheme (teamsvoice's own
    runner.server turns it off). The running server's config has it off and its app is not wrapped in uvicorn's
    ProxyHeadersMiddleware."""
    config = emulator._server.config  # type: ignore[union-attr]
    assert config.proxy_headers is False
    assert config.loaded and not isinstance(config.loaded_app, ProxyHeadersMiddleware)
