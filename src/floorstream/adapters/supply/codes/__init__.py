"""Packaged code tables (JSON), read with importlib.resources by ``code_tables``."""
