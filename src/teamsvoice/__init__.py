"""teamsvoice: an open-source control plane for Microsoft Teams calling (Direct Routing)."""

__version__ = "0.2.0"
