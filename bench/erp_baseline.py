"""What a cursor-mode first start costs per row (docs/erp.md, "First start").

A PostgreSQL table of ``--rows`` work orders (default 300,000, the size issue 13 tried), one
``erp.table`` source in cursor mode with ``track:`` (so a ``field_change`` detector keeps each
row's values as state), ``initial: baseline``; ``floorstream run`` is started as a process on
a fresh store (``--store sqlite`` or ``postgres``) and timed until the baseline is committed:

- *read*: the adapter's closing ``erp_baseline_progress`` line (all rows read and queued);
- *committed*: the store holds a detector-state row for every row (the pipeline caught up);
- the process's CPU seconds over that time, the store's growth (detector-state rows and bytes).

    .venv/bin/python bench/erp_baseline.py [--rows 300000] [--store sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from floorstream.store import schema

PG = os.environ.get("FLOORSTREAM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FLOORSTREAM = str(Path(sys.executable).parent / "floorstream")


def _database(prefix: str) -> str:
    base = make_url(PG)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_erp(url: str, rows: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"))
        conn.execute(text("INSERT INTO product VALUES (1, 'M8 bolt'), (2, 'Hinge')"))
        conn.execute(text(
            "CREATE TABLE production_order (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "product_id INTEGER, product_qty NUMERIC(16,4) NOT NULL, state TEXT NOT NULL, "
            "date_planned_start TIMESTAMP, write_date TIMESTAMP NOT NULL)"))
        conn.execute(text(
            "INSERT INTO production_order SELECT n, 'WH/MO/' || lpad(n::text, 6, '0'), "
            "1 + n % 2, 10.5, (ARRAY['draft','confirmed','progress','done'])[1 + n % 4], "
            "TIMESTAMP '2026-11-02 06:00' + n * INTERVAL '1 minute', "
            "TIMESTAMP '2026-11-01' + n * INTERVAL '1 second' "
            "FROM generate_series(1, :rows) AS n"), {"rows": rows})
        conn.execute(text("CREATE INDEX production_order_write_date "
                          "ON production_order (write_date, id)"))
        conn.execute(text("ANALYZE production_order"))
    engine.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    erp = _database("fs_bench_erp")
    store = _database("fs_bench_store") if args.store == "postgres" else (
        f"sqlite:///{tempfile.mkdtemp()}/fs.db")
    work = Path(tempfile.mkdtemp())
    try:
        make_erp(erp, args.rows)
        config = work / "fs.yaml"
        config.write_text(f"""\
store: "{store}"
default_team: planning
sources:
  - name: orders
    adapter: erp.table
    url: "{erp}"
    interval: 1s
    notify: false
    table: production_order
    mode: cursor
    cursor: write_date
    subject: "{{{{ row.name }}}}"
    track: [state, date_planned_start, product_id]
    lookups: {{product_id: {{table: product}}}}
""")
        log = work / "run.log"
        store_engine = create_engine(store)
        with log.open("wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen([FLOORSTREAM, "run", "-c", str(config), "--log-format",
                                     "json", "--no-delivery"], stdout=out,
                                    stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        read_s = None
        finished: dict[str, Any] = {}
        lines: list[dict[str, Any]] = []
        try:
            while True:
                time.sleep(0.5)
                if read_s is None:
                    for line in log.read_text(errors="replace").splitlines():
                        if '"erp_baseline_progress"' in line:
                            record = json.loads(line)
                            if record.get("finished"):
                                read_s, finished = time.monotonic() - started, record
                            elif record not in lines:
                                lines.append(record)
                try:
                    with store_engine.connect() as conn:
                        states = conn.execute(select(func.count()).select_from(
                            schema.detector_state).where(
                            schema.detector_state.c.subject != "")).scalar_one()
                except Exception:
                    states = 0
                if states >= args.rows:
                    committed_s = time.monotonic() - started
                    cpu = ps.cpu_times()
                    cpu_s = cpu.user + cpu.system
                    break
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text()[-3000:])
        finally:
            proc.terminate()
            proc.wait(60)
        with store_engine.connect() as conn:
            if store_engine.dialect.name == "postgresql":
                size = conn.execute(text(
                    "SELECT pg_total_relation_size('fs_detector_state')")).scalar_one()
            else:
                size = Path(make_url(store).database or "").stat().st_size
        store_engine.dispose()
        return {"rows": args.rows, "store": args.store, "read_s": round(read_s or 0, 1),
                "committed_s": round(committed_s, 1), "cpu_s": round(cpu_s, 1),
                "us_per_row_wall": round(committed_s / args.rows * 1e6),
                "us_per_row_cpu": round(cpu_s / args.rows * 1e6),
                "detector_state_rows": states,
                "store_bytes_per_row": round(size / args.rows),
                "progress_lines": len(lines), "closing_line": finished}
    finally:
        _drop(erp)
        if args.store == "postgres":
            _drop(store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
