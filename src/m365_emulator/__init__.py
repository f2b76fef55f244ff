"""Microsoft 365 emulator: Entra ID v2 (discovery, sign-in/consent pages, token endpoint), a Microsoft
Graph v1.0 subset (directory, licences, groups, Teams voice administration), a MicrosoftTeams
PowerShell stand-in (/_powershell/invoke) and a seeding API (/_admin). Its own ASGI app over HTTPS;
it never imports teamsvoice.

Entry points: settings.EmulatorSettings, app.create_app, server.EmulatorServer,
server.build_uvicorn_server, tls.ensure_tls_material.
"""
