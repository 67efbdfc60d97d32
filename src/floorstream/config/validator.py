"""The plugin-aware validator: one YAML file, validated all at once.

Validation happens in layers because sources, detectors and sinks are plugins: the top level is
checked by :class:`Settings`, each source by its adapter's model, each ``detect`` entry by its
detector's options, each sink by its sink type's model. Every problem found in any layer is
collected with its key path and line, so one ``floorstream check`` shows the whole list.

``floorstream run`` validates with this same code before it starts anything, so what ``check``
accepts is what ``run`` can start: values the daemon would only trip over later (the store
URL and its driver, templates, decoder names, NaN and infinite numbers, plugin names) are
checked here too. An unknown adapter or sink type still has its common keys checked, so one
mistake never hides another.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from floorstream.config.checks import (
    did_you_mean,
    non_finite,
    registry_references,
    store_problem,
    store_warning,
    template_problem,
)
from floorstream.config.settings import Config, Settings
from floorstream.errors import ConfigError, ConfigProblem, UnknownNameError
from floorstream.plugin.adapter import DetectorSpec, SourceConfig
from floorstream.plugin.registry import Registry
from floorstream.plugin.sink import SinkConfig
from floorstream.plugins import Plugins
from floorstream.render import template_environment
from floorstream.yamlsource import LoadedYaml, Path, format_path, load_yaml, read_text

__all__ = ["load_config", "parse_config", "parse_mapping"]


class _AnySource(SourceConfig):
    """The keys every source has, for a source whose adapter is unknown: its own keys cannot
    be checked, the common ones still are."""

    model_config = ConfigDict(extra="ignore")


class _AnySink(SinkConfig):
    """The keys every sink has, for a sink whose type is unknown."""

    model_config = ConfigDict(extra="ignore")


def load_config(path: str | FsPath, plugins: Plugins,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raises :class:`ConfigError` listing every problem."""
    text, problems = read_text(path)
    if text is None:
        raise ConfigError(problems)
    return parse_config(text, plugins, file=str(path), environ=environ)


def parse_config(text: str, plugins: Plugins, *, file: str = "<memory>",
                 environ: Mapping[str, str] | None = None) -> Config:
    """Validate a config file's text; raises :class:`ConfigError` listing every problem."""
    loaded = load_yaml(text, file, environ)
    if loaded.empty:
        raise ConfigError([ConfigProblem(file, "", None, "the file is empty; a config needs "
                                         "at least a source or a store (`floorstream demo` "
                                         "writes one to start from)")])
    if loaded.problems and not loaded.data:
        raise ConfigError(loaded.problems)
    return _Validator(loaded, plugins).run()


def parse_mapping(data: Mapping[str, Any], plugins: Plugins) -> Config:
    """Validate an already-parsed mapping (the library API's ``open(dict)``)."""
    return _Validator(LoadedYaml(dict(data), {}, "<dict>"), plugins).run()


class _Validator:
    def __init__(self, loaded: LoadedYaml, plugins: Plugins) -> None:
        self.loaded = loaded
        self.plugins = plugins
        self.problems: list[ConfigProblem] = list(loaded.problems)
        self.warnings: list[str] = []
        # keys whose ${VAR} was unset: their stand-in '' fails validation too; say it once
        self._unset = set(loaded.unset)
        self._last_model: dict[Path, type[BaseModel]] = {}
        self._env: Any = None  # the renderer's environment, made at the first template
        self._secrets = sorted((s for s in loaded.secrets if len(s) >= 4), key=len, reverse=True)

    def fail(self, path: Path, message: str) -> None:
        for secret in self._secrets:  # a value from the environment is never printed
            message = message.replace(secret, "***")
        self.problems.append(self.loaded.problem(path, message))

    def pydantic(self, exc: ValidationError, prefix: Path, data: Any = None) -> None:
        """File pydantic's errors, one line per key: the members of a union that all failed
        (``str | dict``) become one "should be a valid string or a valid dictionary"."""
        by_key: dict[Path, list[tuple[str, str]]] = {}
        type_errors: set[Path] = set()
        for error in exc.errors():
            loc = _key_path(error["loc"], data, error["type"] == "missing")
            if format_path(prefix + loc) in self._unset:
                continue
            if error["type"] == "finite_number" and isinstance(error.get("input"), float):
                continue  # _non_finite reported it, at the key where it was written
            message, got = error["msg"].removeprefix("Value error, "), ""
            if error["type"] == "extra_forbidden":
                message = "unknown key" + self._suggest(prefix + loc[:-1], str(loc[-1]))
            elif error["type"] == "missing":
                message = "required key is missing"
            elif "input" in error and error["type"] not in ("value_error", "assertion_error"):
                got = f" (got {error['input']!r})"
            if error["type"].endswith("_type"):
                type_errors.add(prefix + loc)
            by_key.setdefault(prefix + loc, []).append((message, got))
        for key, messages in by_key.items():
            if key in type_errors and any(k[:len(key)] == key and len(k) > len(key)
                                          for k in by_key):
                continue  # "not a string" beside the errors inside the mapping it is
            texts = list(dict.fromkeys(m for m, _ in messages))
            got = messages[0][1]
            lead = "Input should be "
            if len(texts) > 1 and all(t.startswith(lead) for t in texts):
                texts = [lead + " or ".join(t.removeprefix(lead) for t in texts)]
            self.fail(key, "; or ".join(texts) + got)

    def _suggest(self, parent: Path, key: str) -> str:
        model = self._model_at(parent)
        if model is None:
            return ""
        import difflib  # here: only an unknown key needs it, not every daemon's start

        names = [f.alias or n for n, f in model.model_fields.items()]
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        expected = f"; expected one of: {', '.join(names)}"
        return (f"; did you mean {close[0]!r}?" if close else "") + expected

    def _model_at(self, parent: Path) -> type[BaseModel] | None:
        """The model that validated ``parent``, to list its keys in an "unknown key" error."""
        if parent == ():
            return Settings
        return self._last_model.get(parent)

    def _validate(self, model: type[Any], values: Any, path: Path, what: str) -> Any:
        """``model.model_validate(values)``; None after filing its problems. A plugin's
        validator that raises something else than ValueError is a problem too, not a crash."""
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            self.pydantic(exc, path, values)
        except Exception as exc:
            self.fail(path, f"{what} failed to validate this: {exc!r}")
        return None

    def run(self) -> Config:
        data = self.loaded.data
        if not isinstance(data, dict):
            raise ConfigError([self.loaded.problem((), "the file must hold a mapping of keys")])
        raw_non_finite = self._non_finite(data, ())
        settings: Settings | None = self._validate(Settings, data, (), "floorstream")
        sources = self._sources(data.get("sources"))
        sinks = self._sinks(data.get("sinks"))
        self._cross_check(data, sinks)
        self._store(data.get("store"))
        self._fleet(data.get("fleet"), data.get("store"))
        self._disabled_plugins(data.get("plugins"))
        if settings is not None and not raw_non_finite:
            for where, value in non_finite(settings):
                if where[:1] not in (("sources",), ("sinks",)):
                    self.fail(where, f"not a finite number (got {value})")
        if self.problems or settings is None:
            raise ConfigError(sorted(self.problems, key=lambda p: (p.line or 0, p.path)))
        self._web_readers(settings)
        return Config(settings, sources, sinks, self.loaded.file, frozenset(self.loaded.secrets),
                      tuple(self.warnings))

    def _non_finite(self, value: Any, path: Path) -> bool:
        """File every NaN or infinity written in the file (``.nan``, ``.inf``, ``1e999``): no
        setting means one, and a model that accepts them would only fail later."""
        found = False
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(path, f"not a finite number (got {value}); write a number")
            return True
        if isinstance(value, dict):
            for key, item in value.items():
                found = self._non_finite(item, (*path, key)) or found
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found = self._non_finite(item, (*path, index)) or found
        return found

    def _sources(self, raw: Any) -> list[SourceConfig]:
        out: list[SourceConfig] = []
        if not isinstance(raw, list):
            return out
        seen: dict[str, int] = {}
        for index, item in enumerate(raw):
            path: Path = ("sources", index)
            if not isinstance(item, dict):
                continue  # Settings already reported it
            name = item.get("name")
            if isinstance(name, str) and name:
                if name in seen:  # by the written name: reported whatever else is wrong
                    self.fail((*path, "name"), f"source name {name!r} is already used by "
                                               f"sources[{seen[name]}]")
                else:
                    seen[name] = index
            source = self._source(path, item)
            if source is not None:
                out.append(source)
        return out

    def _source(self, path: Path, item: dict[str, Any]) -> SourceConfig | None:
        adapter_name = item.get("adapter")
        model: type[SourceConfig] = _AnySource
        known = True
        if not isinstance(adapter_name, str):
            self.fail((*path, "adapter"), "required key is missing; expected one of: "
                                          + ", ".join(self.plugins.adapters.names()))
            known = False
        else:
            try:
                model = self.plugins.adapters.get(adapter_name).config_model
            except UnknownNameError as exc:
                self.fail((*path, "adapter"), str(exc))
                known = False
        self._last_model[path] = model
        values = dict(item)
        if not known:
            values["adapter"] = "?"
        raw_detect = item.get("detect", [])
        if isinstance(raw_detect, list) and known:
            # when its own keys are wrong, validating them below says how
            with contextlib.suppress(Exception):
                raw_detect = [*raw_detect, *model.implied_detectors(item)]
        detect = self._detectors((*path, "detect"), raw_detect)
        values["detect"] = detect or []
        self._templates((*path, "summary"), item.get("summary"))
        source: SourceConfig | None = self._validate(
            model, values, path, f"the {adapter_name} adapter")
        if source is None or not known or detect is None:
            return None
        before = len(self.problems)
        for where, kind, name in registry_references(source):
            registry = getattr(self.plugins, kind, None)
            if isinstance(registry, Registry) and name not in registry:
                try:
                    registry.get(name)
                except UnknownNameError as exc:
                    self.fail((*path, *where), str(exc))
        if not self._has_problems_under(path):
            for where, value in non_finite(source):
                self.fail((*path, *where), f"not a finite number (got {value})")
        return source if len(self.problems) == before else None

    def _has_problems_under(self, path: Path) -> bool:
        prefix = format_path(path)
        return any(p.path == prefix or p.path.startswith((prefix + ".", prefix + "["))
                   for p in self.problems)

    def _detectors(self, path: Path, raw: Any) -> list[DetectorSpec] | None:
        if not isinstance(raw, list):
            self.fail(path, "expected a list of detectors, each {name: {options}}")
            return None
        specs: list[DetectorSpec] = []
        ok = True
        for index, entry in enumerate(raw):
            where = (*path, index)
            if isinstance(entry, str):
                entry = {entry: {}}
            if not isinstance(entry, dict) or len(entry) != 1 or not isinstance(
                    next(iter(entry)), str):
                self.fail(where, "expected one detector as {name: {options}}, e.g. "
                                 "{threshold: {field: temp, above: 85}}")
                ok = False
                continue
            ((name, options),) = entry.items()
            try:
                detector = self.plugins.detectors.get(name)
            except UnknownNameError as exc:
                self.fail(where, str(exc))
                ok = False
                continue
            if not hasattr(detector, "on_change"):
                self.fail(where, f"{name!r} is not configured in detect:; use the source's "
                                 f"{name}: key (e.g. flood: {{max_posts: 10, window: 5m}})")
                ok = False
                continue
            self._last_model[(*where, name)] = detector.options_model
            validated = self._validate(detector.options_model,
                                       {} if options is None else options,
                                       (*where, name), f"the {name} detector")
            if validated is None:
                ok = False
                continue
            specs.append(DetectorSpec(name=name, options=validated))
        return specs if ok else None

    def _environment(self) -> Any:
        """The renderer's Jinja2 environment, made for the first template that is not plain."""
        self._env = self._env or template_environment()
        return self._env

    def _templates(self, path: Path, raw: Any) -> None:
        """Compile summary templates with the renderer's own environment (filters included):
        what compiles here compiles when the daemon starts."""
        items = {"": raw} if isinstance(raw, str) else raw if isinstance(raw, dict) else {}
        for key, template in items.items():
            if not isinstance(template, str):
                continue
            problem = template_problem(self._environment, template)
            if problem is not None:
                self.fail((*path, key) if key else path, problem)

    def _sinks(self, raw: Any) -> list[SinkConfig]:
        out: list[SinkConfig] = []
        if not isinstance(raw, list):
            return out
        seen: dict[str, int] = {}
        for index, item in enumerate(raw):
            path: Path = ("sinks", index)
            if not isinstance(item, dict):
                continue
            name = item.get("name")
            if isinstance(name, str) and name:
                if name in seen:
                    self.fail((*path, "name"), f"sink name {name!r} is already used by "
                                               f"sinks[{seen[name]}]")
                else:
                    seen[name] = index
            type_name = item.get("type")
            model: type[SinkConfig] = _AnySink
            known = True
            if not isinstance(type_name, str):
                self.fail((*path, "type"), "required key is missing; expected one of: "
                                           + ", ".join(self.plugins.sinks.names()))
                known = False
            else:
                try:
                    model = self.plugins.sinks.get(type_name).config_model
                except UnknownNameError as exc:
                    self.fail((*path, "type"), str(exc))
                    known = False
            self._last_model[path] = model
            values = item if known else {**item, "type": "?"}
            sink: SinkConfig | None = self._validate(model, values, path,
                                                     f"the {type_name} sink")
            if sink is None or not known:
                continue
            if not self._has_problems_under(path):
                for where, value in non_finite(sink):
                    self.fail((*path, *where), f"not a finite number (got {value})")
            out.append(sink)
        return out

    def _store(self, url: Any) -> None:
        """The store URL as ``run`` will open it: parsed, a supported database, its driver
        installed. Whether the server answers is for ``check`` without ``--offline``."""
        if not isinstance(url, str) or format_path(("store",)) in self._unset:
            return
        problem = store_problem(url)
        if problem is not None:
            self.fail(("store",), problem)
            return
        warning = store_warning(url)
        if warning is not None:
            self.warnings.append(warning)

    def _web_readers(self, settings: Settings) -> None:
        """``web: {port: 8080}`` alone serves a feed nobody can read: every page answers "log
        in" and there is no one to log in as. Valid (people may come with the next reload),
        so a warning that names the keys to add."""
        web = settings.web
        if web.port is not None and not (web.people or web.public_teams or web.proxy_header):
            self.warnings.append(
                "web: nobody can read the feed: add web.people (floorstream web "
                "--hash-password), web.public_teams or web.proxy_header")

    def _fleet(self, raw: Any, url: Any) -> None:
        """``fleet.enabled: true`` needs a store with session locks (docs/fleet.md)."""
        if not isinstance(raw, dict) or raw.get("enabled") is not True or not isinstance(
                url, str) or store_problem(url) is not None:
            return
        from floorstream.fleet import fleet_problem
        problem = fleet_problem(url, True)
        if problem is not None:
            self.fail(("fleet", "enabled"), problem)

    def _disabled_plugins(self, raw: Any) -> None:
        """``plugins.disable`` must name plugins that exist (a typo would leave the plugin
        running): the registered ones and those already blocked."""
        names = raw.get("disable") if isinstance(raw, dict) else None
        if not isinstance(names, list):
            return
        known = {name for name, _ in self.plugins.manager.list_name_plugin()}
        for index, name in enumerate(names):
            if isinstance(name, str) and name not in known:
                self.fail(("plugins", "disable", index),
                          f"no plugin is named {name!r}{did_you_mean(name, known)}; "
                          "`floorstream plugins` lists them")

    def _cross_check(self, data: dict[str, Any], sinks: list[SinkConfig]) -> None:
        """Names that must refer to each other. Works on the raw mapping, so an undeclared team
        is reported even when some other part of the top level failed validation."""
        raw_teams = data.get("teams")
        teams: dict[Any, Any] = raw_teams if isinstance(raw_teams, dict) else {}
        declared = {str(t) for t in teams} | {str(data.get("default_team", "general")),
                                              str(data.get("admin_team", "admin"))}
        raw_sinks = data.get("sinks")
        sink_names = {s.name for s in sinks} | {
            str(s["name"]) for s in (raw_sinks if isinstance(raw_sinks, list) else [])
            if isinstance(s, dict) and "name" in s}
        raw_routes = data.get("routes")
        routes: list[Any] = raw_routes if isinstance(raw_routes, list) else []
        for index, rule in enumerate(routes):
            rule_teams = rule.get("teams") if isinstance(rule, dict) else None
            if not isinstance(rule_teams, list):
                continue
            for t_index, team in enumerate(rule_teams):
                if teams and isinstance(team, str) and team not in declared:
                    self.fail(("routes", index, "teams", t_index),
                              f"team {team!r} is not declared under teams:"
                              + did_you_mean(team, declared))
        self._check_digests(data, sinks, sink_names)
        for team, team_config in teams.items():
            team_sinks = team_config.get("sinks") if isinstance(team_config, dict) else None
            for s_index, sink in enumerate(team_sinks if isinstance(team_sinks, list) else []):
                if isinstance(sink, str) and sink not in sink_names:
                    self.fail(("teams", team, "sinks", s_index),
                              f"sink {sink!r} is not declared under sinks:"
                              + did_you_mean(sink, sink_names))

    def _check_digests(self, data: dict[str, Any], sinks: list[SinkConfig],
                       sink_names: set[str]) -> None:
        """People's e-mail digests (docs/web.md): ``web.digest_sink`` names an email sink,
        and a person given a digest has an address and that sink to get it by."""
        web = data.get("web")
        if not isinstance(web, dict):
            return
        sink = web.get("digest_sink")
        if isinstance(sink, str):
            if sink not in sink_names:
                self.fail(("web", "digest_sink"), f"sink {sink!r} is not declared under "
                          "sinks:" + did_you_mean(sink, sink_names))
            elif any(s.name == sink and s.type != "email" for s in sinks):
                self.fail(("web", "digest_sink"),
                          f"sink {sink!r} is not an email sink; digests go by e-mail")
        people = web.get("people")
        for person, found in (people.items() if isinstance(people, dict) else ()):
            if not isinstance(found, dict) or found.get("digest") is None:
                continue
            if not found.get("email"):
                self.fail(("web", "people", person, "digest"),
                          "a digest needs the person's email")
            if not isinstance(sink, str):
                self.fail(("web", "people", person, "digest"),
                          "a digest needs web.digest_sink: the email sink that sends it")


# the names pydantic gives the members of a union in an error's location (``summary.str``)
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "bytes", "none", "list", "dict", "set",
                         "tuple", "frozenset", "date", "datetime", "time", "timedelta",
                         "decimal", "uuid", "url", "any", "literal"})


def _key_path(loc: tuple[int | str, ...], data: Any, missing: bool) -> Path:
    """An error's location as the config's key path: without the union member tags pydantic
    puts in it (``str``, ``dict[str,str]``, ``function-after[…]``, a model's class name),
    which a key actually present in ``data`` never is."""
    out: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            out.append(part)
            current = current[part]
            continue
        if isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            out.append(part)
            current = current[part]
            continue
        last = index == len(loc) - 1
        if isinstance(part, str) and not (last and missing) and (
                "[" in part or "-" in part or part in _UNION_TAGS or part[:1].isupper()):
            continue
        out.append(part)
        current = None
    return tuple(out)
