"""Payload decoders: bytes from a transport → a Python record an adapter can map to a Change."""
