"""An ERP table's ``subject:`` template is compiled by ``check``, in the sandbox the adapter
uses: a syntax error or an unknown filter is a config error at its key, not a source that
dies at start."""

from __future__ import annotations

import pytest

from floorstream.config import parse_config
from floorstream.errors import ConfigError
from floorstream.plugins import build_plugins

CONFIG = """
store: "sqlite:///:memory:"
sources:
  - name: orders
    adapter: erp.table
    url: "sqlite:///:memory:"
    table: production_order
    cursor: write_date
    subject: "{template}"
"""


@pytest.mark.parametrize(("template", "message"), [
    ("{{ row.name ", "subject template syntax error"),
    ("{{ row.name | no_such_filter }}", "subject template: No filter named 'no_such_filter'"),
])
def test_a_broken_subject_template_is_a_config_error(template: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(CONFIG.format(template=template), build_plugins(load_entry_points=False))
    problems = [str(p) for p in raised.value.problems]
    assert any("sources[0].tables[0].subject" in p and message in p for p in problems), problems


def test_a_good_subject_template_passes() -> None:
    config = parse_config(CONFIG.format(template="{{ row.name }}"),
                          build_plugins(load_entry_points=False))
    assert config.sources[0].name == "orders"
