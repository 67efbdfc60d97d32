"""Progress of long work for people: log lines in the daemon, a bar or plain lines on the CLI.

The counting is :class:`floorstream.plugin.progress.Progress` (plugins use it too, through
their ``context.log``). Here are the two ways the host shows it:

- :func:`logged`: structured log lines (``done``, ``total``, ``percent``, ``rate``, ``eta_s``)
  every few seconds, for the daemon (prune, and anything it runs for long);
- :func:`console`: for a command: on a terminal, one bar redrawn in place a few times a
  second (``prune posts  [#######.............]  35.2%  352,000/1,000,000  9,870/s  ETA
  1m05s``); otherwise (a pipe, a log file, CI) one plain line every few seconds.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from floorstream.plugin.progress import Progress, format_eta

__all__ = ["ConsoleBar", "NullLog", "console", "logged"]

#: seconds between two log lines (daemon) or two plain lines (a command not on a terminal)
EVERY = 5.0
#: seconds between two redraws of the bar on a terminal
BAR_EVERY = 0.2


class NullLog:
    """A logger that drops everything (a command shows progress on its own stream)."""

    def info(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def logged(log: Any, event: str, total: int | None = None, *, every: float = EVERY,
           **fields: Any) -> Progress:
    return Progress(log, event, total, every=every, **fields)


class ConsoleBar:
    """Draws :class:`Progress` snapshots on ``stream``: a bar on a terminal, else lines."""

    def __init__(self, label: str, stream: TextIO, *, tty: bool | None = None,
                 width: int = 30) -> None:
        self.label = label
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.width = width
        self.drawn = False

    def __call__(self, state: dict[str, Any]) -> None:
        line = self.render(state)
        if self.tty:
            end = "\n" if state.get("finished") else ""
            self.stream.write("\r\x1b[2K" + line + end)
            self.drawn = not state.get("finished")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def render(self, state: dict[str, Any]) -> str:
        done, total = state["done"], state["total"]
        rate = f"{state['rate']:,.0f}/s"
        if total:
            count = f"{done:,}/{total:,}"
            percent = f"{state['percent']:5.1f}%"
        else:
            count, percent = f"{done:,}", ""
        if state.get("finished"):
            tail = f"done in {format_eta(state['elapsed_s'])}"
        else:
            tail = f"ETA {format_eta(state['eta_s'])}"
        if self.tty and total:
            filled = int(self.width * min(1.0, done / total))
            bar = "[" + "#" * filled + "." * (self.width - filled) + "]"
            return f"{self.label}  {bar} {percent}  {count}  {rate}  {tail}"
        parts = [self.label, count, percent.strip(), rate, tail]
        return "  ".join(p for p in parts if p)


def console(label: str, total: int | None = None, *, stream: TextIO | None = None,
            tty: bool | None = None, log: Any = None, event: str = "progress",
            every: float | None = None, **fields: Any) -> Progress:
    """A :class:`Progress` shown on ``stream`` (default stderr): a bar when it is a terminal,
    plain lines every :data:`EVERY` seconds otherwise. ``log`` also gets the lines (default:
    none)."""
    out = stream if stream is not None else sys.stderr
    bar = ConsoleBar(label, out, tty=tty)
    pace = every if every is not None else (BAR_EVERY if bar.tty else EVERY)
    return Progress(log if log is not None else NullLog(), event, total, every=pace,
                    on_update=bar, **fields)
