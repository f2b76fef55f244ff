"""Durable work on DBOS Transact. Nothing outside this package imports dbos."""
