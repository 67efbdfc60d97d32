"""floorstream.malloc: one glibc arena for a daemon's process, unless the operator chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = "from floorstream.malloc import limit_malloc_arenas; print(limit_malloc_arenas())"


def _run(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


@pytest.mark.skipif(not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
                    reason="mallopt's arena limit is glibc's")
def test_the_arena_limit_is_set_on_glibc() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True"


def test_an_operators_malloc_arena_max_wins() -> None:
    assert _run({**os.environ, "MALLOC_ARENA_MAX": "4"}) == "False"
