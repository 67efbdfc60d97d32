"""How ``supply.folder`` reads a file: one ``read`` for a file that kept the size its ``fstat``
gave, and still the whole of one that grew or shrank since (or came in short reads)."""

from __future__ import annotations

import os
from pathlib import Path

from floorstream.adapters.supply.folder import _read_up_to, _sha256


def _open(path: Path) -> int:
    return os.open(path, os.O_RDONLY)


def test_a_file_of_the_size_its_stat_gave_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "asn.edi"
    path.write_bytes(b"ISA" + b"x" * 597)
    fd = _open(path)
    try:
        assert _read_up_to(fd, os.fstat(fd).st_size, 1_000) == path.read_bytes()
    finally:
        os.close(fd)
    empty = tmp_path / "empty.edi"
    empty.write_bytes(b"")
    fd = _open(empty)
    try:
        assert _read_up_to(fd, 0, 1_000) == b""
    finally:
        os.close(fd)


def test_a_file_that_grew_or_shrank_after_its_stat_is_read_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "asn.edi"
    path.write_bytes(b"a" * 600)
    fd = _open(path)
    try:
        size = os.fstat(fd).st_size
        with path.open("ab") as more:  # the sender appends between our stat and our read
            more.write(b"b" * 3_000_000)
        raw = _read_up_to(fd, size, 10_000_000)
        assert raw == b"a" * 600 + b"b" * 3_000_000
        os.lseek(fd, 0, os.SEEK_SET)
        assert _read_up_to(fd, size, 2_001) == (b"a" * 600 + b"b" * 1_401)  # the limit holds
        os.lseek(fd, 0, os.SEEK_SET)
        os.truncate(path, 100)  # ... or cuts it
        assert _read_up_to(fd, size, 10_000_000) == b"a" * 100
    finally:
        os.close(fd)


def test_the_hash_of_a_big_file_is_read_in_blocks(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "big.json"
    path.write_bytes(data)
    fd = _open(path)
    try:
        head = os.read(fd, 1_000)
        assert _sha256(fd, head) == hashlib.sha256(data).hexdigest()
    finally:
        os.close(fd)
