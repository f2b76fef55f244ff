from teamsvoice.cli import app

app()
