"""Waiting for something to happen, and proving that nothing else did.

:func:`wait_for` polls a probe until it returns something truthy and hands that value back; it
is the one waiting helper of the suite (no fixed sleeps: a slow machine waits longer, a fast
one does not wait at all).

:func:`sentinel` is for absence: "nothing more arrived" cannot be waited for, and asserting it
after a fixed sleep passes vacuously on a machine too slow to have delivered the extra post
yet. Instead the test sends a marker *behind* the thing under test through the same path (a
message on the same topic, a row in the same table, a file in the same folder), waits until
the marker has come out at the other end, and only then asserts that nothing else came: what
the thing under test would have produced was produced before the marker's output.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["sentinel", "wait_for"]

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout: float = 20.0, what: str = "", *,
             interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy; return that value.

    Fails with ``what`` (or the probe) and the last value when ``timeout`` seconds pass
    first. ``timeout`` is a ceiling for a broken run, not a pace: a passing run waits only as
    long as the condition takes.
    """
    deadline = time.monotonic() + timeout
    value = probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for "
                                 f"{what or getattr(probe, '__qualname__', probe)} "
                                 f"(last value {value!r})")
        time.sleep(interval)
        value = probe()
    return value


def sentinel(send: Callable[[], object], arrived: Callable[[], T], timeout: float = 20.0,
             what: str = "the sentinel") -> T:
    """Send a marker behind the thing under test and wait until it has come through.

    ``send`` puts the marker on the same path as the input under test (after it); ``arrived``
    probes the output for the marker (truthy once it is there). Returns ``arrived``'s value.
    Everything sent before the marker has then been handled, so an assertion that nothing
    else came is no longer a race against a slow machine.
    """
    send()
    return wait_for(arrived, timeout, what)
