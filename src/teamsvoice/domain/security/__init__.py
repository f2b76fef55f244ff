"""Defences that belong to no single capability: login throttling."""
