"""The daemon's configuration: one YAML file, validated all at once.

Validation happens in layers because sources, detectors and sinks are plugins: the top level is
checked by :class:`Settings`, each source by its adapter's model, each ``detect`` entry by its
detector's options, each sink by its sink type's model. Every problem found in any layer is
collected with its key path and line, so one ``floorstream check`` shows the whole list.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path as FsPath
from typing import Any

import jinja2
from pydantic import BaseModel, ValidationError

from floorstream.config.settings import Config, Settings
from floorstream.errors import ConfigError, ConfigProblem, UnknownNameError
from floorstream.plugin.adapter import DetectorSpec, SourceConfig
from floorstream.plugin.sink import SinkConfig
from floorstream.plugins import Plugins
from floorstream.render import template_environment
from floorstream.yamlsource import LoadedYaml, Path, format_path, load_yaml

__all__ = ["load_config", "parse_config", "parse_mapping"]


def load_config(path: str | FsPath, plugins: Plugins,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raises :class:`ConfigError` listing every problem."""
    file = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "", None, f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, plugins, file=file, environ=environ)


def parse_config(text: str, plugins: Plugins, *, file: str = "<memory>",
                 environ: Mapping[str, str] | None = None) -> Config:
    loaded = load_yaml(text, file, environ)
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
        # keys whose ${VAR} was unset: their stand-in '' fails validation too; say it once
        self._unset = {p.path for p in loaded.problems}

    def fail(self, path: Path, message: str) -> None:
        self.problems.append(self.loaded.problem(path, message))

    def pydantic(self, exc: ValidationError, prefix: Path) -> None:
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
            if format_path(prefix + loc) in self._unset:
                continue
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key" + self._suggest(prefix + loc[:-1], str(loc[-1]))
            elif error["type"] == "missing":
                message = "required key is missing"
            elif "input" in error and error["type"] not in ("value_error", "assertion_error"):
                message += f" (got {error['input']!r})"
            self.fail(prefix + loc, message)

    def _suggest(self, parent: Path, key: str) -> str:
        model = self._model_at(parent)
        if model is None:
            return ""
        names = [f.alias or n for n, f in model.model_fields.items()]
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        expected = f"; expected one of: {', '.join(names)}"
        return (f"; did you mean {close[0]!r}?" if close else "") + expected

    def _model_at(self, parent: Path) -> type[BaseModel] | None:
        """The model that validated ``parent``, to list its keys in an "unknown key" error."""
        if parent == ():
            return Settings
        known: dict[Path, type[BaseModel]] = getattr(self, "_last_model", {})
        return known.get(parent)

    def run(self) -> Config:
        data = self.loaded.data
        if not isinstance(data, dict):
            raise ConfigError([self.loaded.problem((), "the file must hold a mapping of keys")])
        self._last_model: dict[Path, type[BaseModel]] = {}
        settings: Settings | None = None
        try:
            settings = Settings.model_validate(data)
        except ValidationError as exc:
            self.pydantic(exc, ())
        sources = self._sources(data.get("sources"))
        sinks = self._sinks(data.get("sinks"))
        self._cross_check(data, sinks)
        if self.problems or settings is None:
            raise ConfigError(sorted(self.problems, key=lambda p: (p.line or 0, p.path)))
        return Config(settings, sources, sinks, self.loaded.file, frozenset(self.loaded.secrets))

    def _sources(self, raw: Any) -> list[SourceConfig]:
        out: list[SourceConfig] = []
        if not isinstance(raw, list):
            return out
        seen: dict[str, int] = {}
        for index, item in enumerate(raw):
            path: Path = ("sources", index)
            if not isinstance(item, dict):
                continue  # Settings already reported it
            source = self._source(path, item)
            if source is None:
                continue
            if source.name in seen:
                self.fail((*path, "name"), f"source name {source.name!r} is already used by "
                                           f"sources[{seen[source.name]}]")
            seen[source.name] = index
            out.append(source)
        return out

    def _source(self, path: Path, item: dict[str, Any]) -> SourceConfig | None:
        adapter_name = item.get("adapter")
        if not isinstance(adapter_name, str):
            self.fail((*path, "adapter"), "required key is missing; expected one of: "
                                          + ", ".join(self.plugins.adapters.names()))
            return None
        try:
            adapter = self.plugins.adapters.get(adapter_name)
        except UnknownNameError as exc:
            self.fail((*path, "adapter"), str(exc))
            return None
        model: type[SourceConfig] = adapter.config_model
        self._last_model[path] = model
        values = dict(item)
        raw_detect = item.get("detect", [])
        if isinstance(raw_detect, list):
            raw_detect = [*raw_detect, *model.implied_detectors(item)]
        values["detect"] = self._detectors((*path, "detect"), raw_detect,
                                           str(item.get("name", "")))
        ok = True
        if values["detect"] is None:
            values["detect"] = []
            ok = False
        self._templates((*path, "summary"), item.get("summary"))
        try:
            source = model.model_validate(values)
        except ValidationError as exc:
            self.pydantic(exc, path)
            return None
        return source if ok else None

    def _detectors(self, path: Path, raw: Any, source: str) -> list[DetectorSpec] | None:
        if not isinstance(raw, list):
            self.fail(path, "expected a list of detectors, each {name: {options}}")
            return None
        specs: list[DetectorSpec] = []
        ok = True
        for index, entry in enumerate(raw):
            where = (*path, index)
            if isinstance(entry, str):
                entry = {entry: {}}
            if not isinstance(entry, dict) or len(entry) != 1:
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
            try:
                validated = detector.options_model.model_validate(options or {})
            except ValidationError as exc:
                self._last_model[(*where, name)] = detector.options_model
                self.pydantic(exc, (*where, name))
                ok = False
                continue
            specs.append(DetectorSpec(name=name, options=validated))
        return specs if ok else None

    def _templates(self, path: Path, raw: Any) -> None:
        env = template_environment()
        items = {"": raw} if isinstance(raw, str) else raw if isinstance(raw, dict) else {}
        for key, template in items.items():
            if not isinstance(template, str):
                continue
            try:
                env.parse(template)
            except jinja2.TemplateSyntaxError as exc:
                where = (*path, key) if key else path
                self.fail(where, f"template syntax error: {exc.message}")

    def _sinks(self, raw: Any) -> list[SinkConfig]:
        out: list[SinkConfig] = []
        if not isinstance(raw, list):
            return out
        for index, item in enumerate(raw):
            path: Path = ("sinks", index)
            if not isinstance(item, dict):
                continue
            type_name = item.get("type")
            if not isinstance(type_name, str):
                self.fail((*path, "type"), "required key is missing; expected one of: "
                                           + ", ".join(self.plugins.sinks.names()))
                continue
            try:
                sink = self.plugins.sinks.get(type_name)
            except UnknownNameError as exc:
                self.fail((*path, "type"), str(exc))
                continue
            self._last_model[path] = sink.config_model
            try:
                out.append(sink.config_model.model_validate(item))
            except ValidationError as exc:
                self.pydantic(exc, path)
        return out

    def _cross_check(self, data: dict[str, Any], sinks: list[SinkConfig]) -> None:
        """Names that must refer to each other. Works on the raw mapping, so an undeclared team
        is reported even when some other part of the top level failed validation."""
        teams = data.get("teams") if isinstance(data.get("teams"), dict) else {}
        assert isinstance(teams, dict)
        declared = set(teams) | {str(data.get("default_team", "general")),
                                 str(data.get("admin_team", "admin"))}
        sink_names = {s.name for s in sinks} | {
            str(s["name"]) for s in data.get("sinks") or [] if isinstance(s, dict) and "name" in s}
        routes = data.get("routes") if isinstance(data.get("routes"), list) else []
        assert isinstance(routes, list)
        for index, rule in enumerate(routes):
            rule_teams = rule.get("teams") if isinstance(rule, dict) else None
            if not isinstance(rule_teams, list):
                continue
            for t_index, team in enumerate(rule_teams):
                if teams and team not in declared:
                    self.fail(("routes", index, "teams", t_index),
                              f"team {team!r} is not declared under teams:"
                              + _did_you_mean(str(team), declared))
        for team, team_config in teams.items():
            team_sinks = team_config.get("sinks") if isinstance(team_config, dict) else None
            for s_index, sink in enumerate(team_sinks if isinstance(team_sinks, list) else []):
                if sink not in sink_names:
                    self.fail(("teams", team, "sinks", s_index),
                              f"sink {sink!r} is not declared under sinks:"
                              + _did_you_mean(sink, sink_names))


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
