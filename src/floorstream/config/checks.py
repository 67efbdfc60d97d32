"""Checks of single values that a model cannot make by itself, each the same one the daemon
relies on at start: the store URL (parsed, driver importable), summary templates (compiled
by the renderer's own Jinja2 environment, unless plain), non-finite numbers, names of
registered plugins.

Each returns a one-line reason (or None), so the validator can file it at its key path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from floorstream.plaintemplate import parse

if TYPE_CHECKING:
    import jinja2

__all__ = ["did_you_mean", "non_finite", "registry_references",
           "store_problem", "store_warning", "template_problem"]

#: the backends floorstream's store has statements for (store/dialect.py)
STORE_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")

#: missing driver module → what to install
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary] (pip install 'floorstream[postgres]')",
    "psycopg2": "psycopg2-binary",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "pymysql": "PyMySQL (pip install 'floorstream[mysql]')",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}

_URL_EXAMPLES = ("sqlite:///floorstream.db, postgresql+psycopg://user@host/db or "
                 "mysql+pymysql://user@host/db")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    import difflib  # here: only a misspelt name needs it, not every daemon's start

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse_store(url: str) -> URL | str:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return f"not a database URL; expected {_URL_EXAMPLES}"
    try:
        port = parsed.port
    except ValueError:
        return "the port is not a number"
    if port is not None and not 1 <= port <= 65535:
        return f"port {port} is out of range (1-65535)"
    return parsed


def store_problem(url: str) -> str | None:
    """Why ``Store.open(url)`` cannot work whatever the network does, or None.

    Never repeats the URL: it may hold a password.
    """
    parsed = _parse_store(url)
    if isinstance(parsed, str):
        return parsed
    backend = parsed.get_backend_name()
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        return (f"unknown database {parsed.drivername!r}; floorstream keeps its store in "
                f"{', '.join(STORE_BACKENDS)}: {_URL_EXAMPLES}")
    missing: str | None = None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (exc.name or parsed.get_driver_name()).split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        missing = f"its driver {module} is not installed: pip install {package}"
    if backend not in STORE_BACKENDS:
        return (f"floorstream keeps its store in {', '.join(STORE_BACKENDS)}, not {backend}"
                + (f" (and {missing})" if missing else ""))
    if missing:
        return f"the {backend} store needs a driver: {missing}"
    return None


def store_warning(url: str) -> str | None:
    """A problem ``run`` would meet that may be fixed before it runs: the folder of a SQLite
    store does not exist (yet)."""
    parsed = _parse_store(url)
    if isinstance(parsed, str) or parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    folder = Path(database).parent
    if not folder.is_dir():
        return f"store: the folder {str(folder)!r} of the SQLite store does not exist"
    return None


def template_problem(env: Callable[[], jinja2.Environment], text: str) -> str | None:
    """Parse and compile ``text`` with the renderer's environment (``env()``, called only for
    a template that is not plain); unknown filters and tests are errors even inside ``{% if
    %}`` blocks, where Jinja2 would only fail when rendering. A plain template
    (floorstream.plaintemplate) is valid by construction: checked without Jinja2."""
    if parse(text) is not None:
        return None
    import jinja2  # a config with a template that is not plain: imported then
    from jinja2 import nodes

    environment = env()
    builtins = jinja2.Environment()  # its filters and tests are Jinja2's builtin ones
    try:
        tree = environment.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error: {exc.message}"
    unknown: list[str] = []
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        kind, known, builtin = (
            ("filter", environment.filters, builtins.filters) if isinstance(node, nodes.Filter)
            else ("test", environment.tests, builtins.tests))
        name = str(getattr(node, "name", ""))
        if name not in known and f"{kind} {name!r}" not in " ".join(unknown):
            own = sorted(set(known) - set(builtin))
            unknown.append(f"unknown {kind} {name!r}{did_you_mean(name, known)} (known: "
                           + ", ".join([*own, f"Jinja2's builtin {kind}s"]) + ")")
    if unknown:
        return "; ".join(unknown)
    try:
        environment.compile(tree)
    except jinja2.TemplateError as exc:
        return f"template error: {exc}"
    return None


def non_finite(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], float]]:
    """Every NaN or infinite float in a (validated) model, list or mapping, with its path
    (model fields by their config key)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield path, value
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from non_finite(getattr(value, name), (*path, info.alias or name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from non_finite(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from non_finite(item, (*path, index))


def registry_references(model: BaseModel) -> Iterator[tuple[tuple[Any, ...], str, str]]:
    """(path, registry, name) for every value of a source that names a registered plugin
    item: by convention, a source's ``decode`` key names a decoder."""
    decode = getattr(model, "decode", None)
    if "decode" in type(model).model_fields and isinstance(decode, str):
        yield ("decode",), "decoders", decode
