"""Procedural datasets with known factors of variation."""
