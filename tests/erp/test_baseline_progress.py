"""Progress of long work: the counting (done / total, rate, ETA on a clock), the command
line's bar on a terminal and plain lines elsewhere, and a real first start of a cursor-mode
table logging its progress (``erp_baseline_progress``) through the adapter's context.log."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from floorstream.plugin import Progress
from floorstream.progress import ConsoleBar, console
from support.daemon import DaemonRunner
from support.erp import create_erp, erp_config, now_sql
from support.waiting import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def test_progress_lines_every_few_seconds_with_rate_and_eta() -> None:
    clock, log = Clock(), Lines()
    progress = Progress(log, "job_progress", 1000, every=5.0, clock=clock, table="orders")
    for _ in range(4):  # 4 s: nothing logged yet
        clock.now += 1
        progress.advance(100)
    assert log.lines == []
    clock.now += 1  # 5 s, 500 done
    progress.advance(100)
    event, fields = log.lines[-1]
    assert event == "job_progress" and fields["table"] == "orders"
    assert (fields["done"], fields["total"], fields["percent"]) == (500, 1000, 50.0)
    assert fields["rate"] == 100.0 and fields["eta_s"] == 5.0
    clock.now += 1
    progress.advance(100)  # 1 s later: not yet
    assert len(log.lines) == 1
    clock.now += 4
    progress.advance(400)
    assert len(log.lines) == 2 and log.lines[-1][1]["eta_s"] == 0.0
    state = progress.finish()
    assert log.lines[-1][1]["finished"] is True and state["done"] == 1000
    # unknown total: no percent, no ETA, still a rate
    other = Progress(log, "scan", None, every=0.0, clock=clock)
    clock.now += 2
    other.advance(10)
    assert log.lines[-1][1]["percent"] is None and log.lines[-1][1]["eta_s"] is None


def test_a_bar_on_a_terminal_lines_elsewhere() -> None:
    tty = io.StringIO()
    bar = ConsoleBar("pruning posts", tty, tty=True, width=10)
    bar({"done": 250, "total": 1000, "percent": 25.0, "rate": 50.0, "eta_s": 15.0,
         "elapsed_s": 5.0})
    drawn = tty.getvalue()
    assert drawn.startswith("\r\x1b[2K") and "[##........]" in drawn and "ETA 15s" in drawn
    assert "\n" not in drawn  # redrawn in place
    bar({"done": 1000, "total": 1000, "percent": 100.0, "rate": 50.0, "eta_s": 0,
         "elapsed_s": 20.0, "finished": True})
    assert tty.getvalue().endswith("done in 20s\n")

    pipe = io.StringIO()
    plain = console("pruning posts", 3, stream=pipe, tty=False, every=0.0)
    plain.advance()
    plain.finish()
    lines = pipe.getvalue().splitlines()
    assert "\r" not in pipe.getvalue() and "[" not in pipe.getvalue()
    assert lines[0].startswith("pruning posts  1/3  33.3%")
    assert lines[-1].startswith("pruning posts  3/3  100.0%") or "done in" in lines[-1]


CURSOR = """        mode: cursor
        cursor: write_date
        batch: 500
"""


def test_a_cursor_baseline_logs_its_progress(sqlite_url: str, tmp_path: Path) -> None:
    erp = create_erp(sqlite_url, orders=0)
    rows = 2500
    with erp.begin() as conn:
        conn.execute(text(
            "INSERT INTO production_order (id, name, product_id, product_qty, state, "
            f"create_date, write_date) VALUES (:i, :n, 1, 1, 'draft', {now_sql(erp)}, "
            f"{now_sql(erp)})"), [{"i": i, "n": f"WH/MO/{i:05d}"} for i in range(1, rows + 1)])
    erp.dispose()
    runner = DaemonRunner(erp_config(tmp_path / "fs.db", sqlite_url, CURSOR), process=True,
                          workdir=tmp_path)
    with runner:
        runner.start()

        def finished() -> dict[str, Any] | None:
            for line in runner.log().splitlines():
                if '"erp_baseline_progress"' in line:
                    record = json.loads(line)
                    if record.get("finished"):
                        return record  # type: ignore[no-any-return]
            return None

        record: dict[str, Any] = wait_for(finished, 60,  # type: ignore[arg-type]
                                          "the baseline's closing progress line")
        runner.stop()
    assert record["done"] == rows and record["total"] == rows
    assert record["percent"] == 100.0 and record["rate"] > 0
    assert record["table"] == "production_order" and record["mode"] == "cursor"
    assert record["source"] == "orders"  # through the adapter's context.log
