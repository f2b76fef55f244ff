"""Entra ID v2 behaviour: OIDC discovery, sign-in and consent pages, the token endpoint."""
