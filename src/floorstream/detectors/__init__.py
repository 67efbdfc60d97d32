"""Detectors: decide which changes mean something and turn them into events."""

from floorstream.detectors.base import Detector, DetectorState

__all__ = ["Detector", "DetectorState"]
