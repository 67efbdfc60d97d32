"""One malloc arena for a daemon's process (glibc), set before its threads start.

glibc gives every thread that allocates its own arena (up to eight per core), and memory
freed in one thread's arena is not reused by another's. A daemon has half a dozen
long-lived threads (the MQTT network thread, the pipeline, the WAL checkpointer, the
monitor, retention …) whose allocations above pymalloc's 512 bytes — SQLite's page cache,
socket reads, large lists of a batch — each grew an arena of their own while the main
arena kept the free space the start left behind: 2.2 MB of the 3.5 MB a paced run added
after the start. With one arena (``M_ARENA_MAX=1``, what ``MALLOC_ARENA_MAX=1`` does) the
peers harness's paced 5,000 msgs/s run peaked at 59.2-59.3 MiB instead of 60.6-60.8, with
no change in CPU beyond the run-to-run spread (threads hold the GIL for almost everything
they allocate, so they rarely contend for the arena's lock).

Only for a process that runs a daemon until it stops (``Daemon.run_forever``, ``floorstream
run``), like ``settle_process``: an application that embeds a daemon owns its allocator. An
operator's own ``MALLOC_ARENA_MAX`` wins; other C libraries (musl) are left alone.
"""

from __future__ import annotations

import os

__all__ = ["limit_malloc_arenas"]

#: glibc's mallopt parameter number for the arena limit (malloc.h)
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Limit glibc's arenas to ``arenas``; True when set. Call it before the daemon's threads
    start: a thread keeps the arena it was given."""
    if os.environ.get("MALLOC_ARENA_MAX") or not _glibc():
        return False
    import ctypes  # (~0.3 MB, against ~1.4 MB the arenas saved)

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # not glibc, or not a POSIX system
        return False
