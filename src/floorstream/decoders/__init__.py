"""Payload decoders: bytes from a transport → a Python record an adapter can map to a Change."""

from floorstream.decoders.base import Decoder

__all__ = ["Decoder"]
