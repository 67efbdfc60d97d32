"""Sinks: deliver committed posts to where people work (chat, mail, boards)."""
