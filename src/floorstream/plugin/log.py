"""The logger floorstream's modules and plugins log through (``AdapterContext.log``), with
structlog's calling convention — and structlog imported only where the output needs it.

``log.warning("event", key=value)``, ``bind``, ``exception``: why not structlog's own logger.
Importing structlog imports its console renderer and what that renderer uses (rich and
pygments where installed, attrs, greenlet) — 5–6 MB of RSS, a tenth of a daemon that writes
JSON lines and never renders a console line (issue 16). So:

- while structlog is **not imported**, the daemon's JSON lines (set up by
  :func:`floorstream.logs.configure_logging`) and the library's ``logging`` records are
  written here, in exactly the format structlog's processors gave them;
- once anything has **imported structlog** (a host application, a plugin, a test's
  ``capture_logs``), every call goes through ``structlog.get_logger(name)``, so structlog's
  configuration — the host's own, if it made one — decides, as before. If structlog is not
  configured at that moment, it is configured as floorstream's output would have been: the
  daemon's JSON lines, or the library's hand-over to ``logging``.

It is part of the plugin API (it imports only the standard library); the host's side —
choosing the output — is :mod:`floorstream.logs`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from types import ModuleType, TracebackType
from typing import Any

__all__ = ["Logger", "get_logger"]

#: a method name → its level number (structlog's names: ``warn``, ``exception``, ``msg``…)
_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG, "info": logging.INFO, "msg": logging.INFO,
    "warning": logging.WARNING, "warn": logging.WARNING, "error": logging.ERROR,
    "exception": logging.ERROR, "critical": logging.CRITICAL, "fatal": logging.CRITICAL,
}
#: the ``level`` field structlog's ``add_log_level`` writes for a method
_LEVEL_FIELD: dict[str, str] = {"warn": "warning", "exception": "error", "msg": "info",
                                "fatal": "critical"}
_LEVEL_NAME = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
               logging.ERROR: "error", logging.CRITICAL: "critical"}


def _redactor(secrets: Iterable[str]) -> Any:
    needles = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        if not needles:
            return event
        for key, value in event.items():
            text = value if isinstance(value, str) else None
            if text is None and not isinstance(value, int | float | bool | type(None)):
                text = str(value)
            if text is not None and any(n in text for n in needles):
                for needle in needles:
                    text = text.replace(needle, "***")
                event[key] = text
        return event

    return redact


class _JsonLines:
    """The daemon's JSON lines without structlog: the processors of :func:`configure_logging`
    (level, ISO UTC timestamp, redaction, ``exc_info`` → ``exception``, ``json.dumps``) and
    structlog's ``PrintLogger`` (a line and a flush per event, under a lock per stream)."""

    def __init__(self, min_level: int, secrets: Iterable[str], out: Any) -> None:
        self.min_level = min_level
        self.secrets = tuple(secrets)
        self.redact = _redactor(self.secrets)
        self.out = out
        self.lock = threading.Lock()

    def write(self, method: str, event: dict[str, Any]) -> None:
        event["level"] = _LEVEL_FIELD.get(method, method)
        event["timestamp"] = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
        self.redact(None, method, event)
        _format_exc_info(event)
        line = json.dumps(event, default=_json_fallback)
        with self.lock:
            print(line, file=None if self.out is sys.stdout else self.out, flush=True)


class _State:
    """What :func:`configure_logging` chose (the JSON lines, while structlog is not imported);
    None: the library's hand-over to ``logging``."""

    json: _JsonLines | None = None


_state = _State()


class Logger:
    """A logger with structlog's calling convention: ``log.info("event", key=value)``.

    Each call goes to structlog if it is imported (see the module's docstring), else is
    written here. Anything else structlog's bound loggers have (``new``, ``ainfo``…) is
    structlog's: asking for it imports structlog.
    """

    __slots__ = ("_context", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context: dict[str, Any] = context or {}

    def bind(self, **values: Any) -> Logger:
        return Logger(self._name, {**self._context, **values})

    def unbind(self, *keys: str) -> Logger:
        context = dict(self._context)
        for key in keys:
            del context[key]
        return Logger(self._name, context)

    def try_unbind(self, *keys: str) -> Logger:
        return Logger(self._name, {k: v for k, v in self._context.items() if k not in keys})

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "debug", event, args, kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "info", event, args, kw)

    def msg(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "msg", event, args, kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "warning", event, args, kw)

    def warn(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "warn", event, args, kw)

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "error", event, args, kw)

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "exception", event, args, kw)

    def critical(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "critical", event, args, kw)

    def fatal(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, "fatal", event, args, kw)

    def log(self, level: int, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return _emit(self, _LEVEL_NAME.get(level, "info"), event, args, kw)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_through_structlog(_import_structlog(), self), name)

    def __repr__(self) -> str:
        return f"<floorstream Logger {self._name!r} context={self._context!r}>"


def get_logger(name: str) -> Logger:
    """The logger floorstream's modules (and plugins, through ``AdapterContext.log``) use."""
    return Logger(name)


def _emit(logger: Logger, method: str, event: str | None, args: tuple[Any, ...],
          kw: dict[str, Any]) -> Any:
    structlog = sys.modules.get("structlog")
    if structlog is not None:
        return getattr(_through_structlog(structlog, logger), method)(event, *args, **kw)
    lines = _state.json
    if lines is not None:
        if _LEVELS[method] < lines.min_level:
            return None
        if method == "exception":
            kw.setdefault("exc_info", True)
        lines.write(method, _event_dict(logger, _interpolate(event, args), kw))
        return None
    _to_logging(logger, method, event, args, kw)
    return None


def _event_dict(logger: Logger, event: str | None, kw: dict[str, Any]) -> dict[str, Any]:
    """What structlog's ``_process_event`` builds: the bound context, the call's keys, the
    event last."""
    found = dict(logger._context)
    found.update(kw)
    if event is not None:
        found["event"] = event
    return found


def _interpolate(event: str | None, args: tuple[Any, ...]) -> str | None:
    """structlog's ``log.info("%s done", name)``: %-formatting when arguments are given."""
    if not args or event is None:
        return event
    if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        return event % args[0]
    return event % args


def _to_logging(logger: Logger, method: str, event: str | None, args: tuple[Any, ...],
                kw: dict[str, Any]) -> None:
    """The library's output: what structlog's stdlib ``BoundLogger`` with
    :func:`_library_processors` hands the ``logging`` logger of the same name — a
    ``key=repr(value)`` line, the event first, the other keys sorted."""
    target = logging.getLogger(logger._name)
    level = _LEVELS[method]
    if not target.isEnabledFor(level):
        return
    if method == "exception":
        kw.setdefault("exc_info", True)
    if args:
        kw["positional_args"] = args
    found = _event_dict(logger, event, kw)
    _format_exc_info(found)
    items = [("event", found.pop("event", None)), *sorted(found.items())]
    line = " ".join(key + "=" + repr(value) for key, value in items)
    if method == "exception":
        target.exception(line)
    else:
        target.log(level, line)


def _format_exc_info(event: dict[str, Any]) -> None:
    """structlog's ``format_exc_info``: an ``exc_info`` key becomes the formatted traceback
    under ``exception``."""
    if "exc_info" not in event:
        return
    value = event.pop("exc_info")
    info: tuple[type[BaseException], BaseException, TracebackType | None] | None = None
    if isinstance(value, BaseException):
        info = (value.__class__, value, value.__traceback__)
    elif (isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], type)
          and issubclass(value[0], BaseException) and isinstance(value[1], BaseException)):
        info = value
    elif value:
        current = sys.exc_info()
        if current[1] is not None:
            info = current
    if info is not None:
        text = "".join(traceback.format_exception(info[0], info[1], info[2]))
        event["exception"] = text[:-1] if text.endswith("\n") else text


def _json_fallback(value: Any) -> Any:
    """structlog's ``JSONRenderer`` default: ``__structlog__()`` if the value has it, else
    its repr."""
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


def _import_structlog() -> ModuleType:
    import structlog  # only when something asks for it

    return structlog


def _through_structlog(structlog: ModuleType, logger: Logger) -> Any:
    """``structlog.get_logger(name)`` bound to the logger's context; structlog configured as
    floorstream's output is first if nobody configured it yet."""
    if not structlog.is_configured():
        lines = _state.json
        if lines is not None:
            _configure_structlog(structlog, lines.min_level, "json", lines.secrets, lines.out)
        else:
            _configure_library(structlog)
    bound = structlog.get_logger(logger._name)
    return bound.bind(**logger._context) if logger._context else bound


def _configure_structlog(structlog: ModuleType, min_level: int, fmt: str,
                         secrets: Iterable[str], out: Any) -> None:
    renderer: Any = (structlog.dev.ConsoleRenderer(colors=out.isatty()) if fmt == "console"
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redactor(secrets),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def _configure_library(structlog: ModuleType) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
