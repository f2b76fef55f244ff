"""Durable jobs of every kind as staff see them (catalogue.py): list, show, retry, cancel."""
