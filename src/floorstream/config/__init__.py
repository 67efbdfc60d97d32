"""The daemon's configuration: one YAML file, validated all at once.

Three parts, one job each:

- :mod:`floorstream.config.settings`: the models of floorstream's own keys (:class:`Settings`,
  :class:`TeamConfig`, :class:`PipelineSettings`…) and the validated :class:`Config`;
- :mod:`floorstream.config.validator`: the plugin-aware validator (:func:`load_config`,
  :func:`parse_config`, :func:`parse_mapping`): each source by its adapter's model, each
  ``detect`` entry by its detector's options, each sink by its type's model, every problem
  collected with its key path and line;
- :mod:`floorstream.config.schema`: the JSON Schema export (:func:`config_json_schema`), one
  branch per adapter and sink type, for editors.
"""

from floorstream.config.schema import config_json_schema
from floorstream.config.settings import (
    Config,
    HealthSettings,
    LoggingSettings,
    PipelineSettings,
    PluginSettings,
    Settings,
    TeamConfig,
)
from floorstream.config.validator import load_config, parse_config, parse_mapping

__all__ = [
    "Config",
    "HealthSettings",
    "LoggingSettings",
    "PipelineSettings",
    "PluginSettings",
    "Settings",
    "TeamConfig",
    "config_json_schema",
    "load_config",
    "parse_config",
    "parse_mapping",
]
