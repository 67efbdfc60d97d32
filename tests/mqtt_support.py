"""Kept for the tests that import it by this name: the MQTT helpers live in ``support.mqtt``
and the one waiting helper in ``support.waiting``."""

from support.mqtt import PrivateBroker, Publisher, Subscriptions, free_port
from support.waiting import wait_for

__all__ = ["PrivateBroker", "Publisher", "Subscriptions", "free_port", "wait_for"]
