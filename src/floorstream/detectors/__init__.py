"""Detectors: decide which changes mean something and turn them into events."""
