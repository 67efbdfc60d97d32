"""Default phrasing, sandboxed templates, routing rules and ``floorstream explain``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from floorstream.cli import main
from floorstream.model import Change, Event, Severity
from floorstream.plugin.phrasing import duration, quantity, value
from floorstream.render import Renderer, clip
from floorstream.route import Router, RouteRule
from floorstream.testing.detectors import phrase, phrase_book

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def _event(type: str, fields: dict[str, Any] | None = None, *, source: str = "presses",
           subject: str = "press-07", severity: Severity = Severity.INFO,
           attrs: dict[str, str] | None = None, data: dict[str, Any] | None = None) -> Event:
    change = Change(source=source, subject=subject, kind="row.updated", position="1",
                    data=data or {}) if data is not None else None
    return Event.create(type=type, source=source, subject=subject, position="1",
                        occurred_at=T0, severity=severity, fields=fields or {},
                        attrs=attrs or {}, change=change)


@pytest.mark.parametrize(("type", "fields", "expected"), [
    ("machine.state_changed", {"before_label": "running", "after_label": "stopped"},
     "press-07 stopped (was running)"),
    ("machine.state_changed", {"before_label": "stopped", "after_label": "running",
                               "duration_s": 7500}, "press-07 running again after 2 h 5 min"),
    ("metric.limit_exceeded", {"label": "humidity", "value": 71.346, "limit": 65, "unit": "%",
                               "direction": "above", "duration_s": 0},
     "press-07: humidity 71.35%, above the 65% limit"),
    ("metric.limit_cleared", {"label": "oil pressure", "value": 2.6, "limit": 2.5,
                              "unit": "bar", "direction": "below", "peak": 1.2,
                              "duration_s": 3 * 86400 + 4 * 3600},
     "press-07: oil pressure back to 2.6 bar, above 2.5 bar (peak 1.2 bar, 3 d 4 h)"),
    ("machine.offline", {"silent_s": 90}, "press-07 offline: no data for 1 min 30 s"),
    ("machine.online", {"silent_s": 30}, "press-07 back online after 30 s"),
    ("record.field_changed", {"label": "planned start", "before": None,
                              "after": datetime(2026, 11, 2, 14, 0)},
     "press-07: planned start (empty) → 2 Nov 2026 14:00"),
    ("record.field_changed", {"label": "done", "before": False, "after": True},
     "press-07: done no → yes"),
    ("record.created", {}, "press-07 created"),
    ("source.problem", {"message": "column write_date was dropped"},
     "presses: column write_date was dropped"),
])
def test_default_phrases(type: str, fields: dict[str, Any], expected: str) -> None:
    assert phrase(_event(type, fields)) == expected


def test_unknown_types_and_broken_fields_still_read_plainly() -> None:
    assert phrase(_event("shipment.delayed", {"days": 3, "carrier": "DHL"})) == (
        "press-07: shipment delayed (days 3, carrier DHL)")
    # a known type missing its fields falls back instead of failing the post
    assert phrase(_event("metric.limit_exceeded", {})) == (
        "press-07: metric limit exceeded")
    assert phrase(_event("x.y", {"summary": "given by the publisher"})) == (
        "given by the publisher")


def test_phrasing_helpers_and_clip() -> None:
    assert quantity(92.0, "°C") == "92 °C" and quantity(45, "%") == "45%"
    assert value(0.00123) == "0.00123" and value("") == "(empty)"
    assert [duration(s) for s in (0, 59.6, 3600, 86400)] == ["0 s", "1 min", "1 h", "1 d"]
    # rounded, never cut: a stop of 1 min 45 s once read "1 min"; to 5 s under 10 min
    assert [duration(s) for s in (61, 105, 119, 599, 629, 630, 5399, 86400 + 1800)] == [
        "1 min", "1 min 45 s", "2 min", "10 min", "10 min", "11 min", "1 h 30 min", "1 d 1 h"]
    long = clip("word " * 100)
    assert len(long) == 200 and long.endswith("…")
    assert clip("  two\n lines ") == "two lines"


def test_templates_per_source_and_per_type() -> None:
    renderer = _renderer({
        "orders": "Work order {{ row.name }}: {{ change.label }} {{ change.before | value }} → "
                  "{{ change.after | value }}",
        "presses": {"metric.*": "{{ subject }} {{ fields.value | quantity(fields.unit) }} "
                                "({{ severity }}, {{ attrs.area }})"},
    })
    order = _event("record.field_changed", {"label": "status", "before": "Confirmed",
                                            "after": "Done"}, source="orders",
                   data={"name": "WH/MO/00042"})
    assert renderer.summary(order) == "Work order WH/MO/00042: status Confirmed → Done"
    metric = _event("metric.limit_exceeded", {"value": 91.2, "unit": "°C", "label": "t",
                                              "limit": 85, "direction": "above"},
                    severity=Severity.WARNING, attrs={"area": "pressing"})
    assert renderer.summary(metric) == "press-07 91.2 °C (warning, pressing)"
    state = _event("machine.state_changed", {"before_label": "a", "after_label": "b"})
    assert renderer.summary(state) == "press-07 b (was a)"  # no template for this type
    assert _renderer({"presses": "{{ nothing.here }}"}).summary(state) == "press-07 b (was a)"


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('touch {marker}')"
    ".read() }}",
    "{{ event.change.__class__.__init__.__globals__['sys'].modules['os'].system('touch "
    "{marker}') }}",
    "{{ fields.update({'x': 1}) }}{{ [].append(1) }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
])
def test_templates_cannot_run_code_and_fall_back_to_the_default(template: str,
                                                                 tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    event = _event("machine.state_changed", {"before_label": "a", "after_label": "b"},
                   data={"name": "x"})
    summary = _renderer({"presses": template.replace("{marker}", str(marker))}).summary(event)
    assert summary == "press-07 b (was a)"
    assert not marker.exists()
    assert event.fields == {"before_label": "a", "after_label": "b"}


RULES = [
    RouteRule.model_validate(r) for r in (
        {"name": "critical to on-call", "match": {"severity": ">=critical"},
         "teams": ["oncall"], "final": True},
        {"name": "press trouble", "match": {"source": "presses", "severity": ">=warning"},
         "teams": ["maintenance"]},
        {"match": {"type": ["machine.*", "metric.*"], "attrs": {"area": "press*"}},
         "teams": ["production", "maintenance"]},
        {"match": {"type": "shipment.*", "severity": "<warning"}, "teams": ["purchasing"]},
    )
]


def test_routing_rules() -> None:
    router = Router(RULES, "general")
    warn = _event("metric.limit_exceeded", severity=Severity.WARNING,
                  attrs={"area": "pressing"})
    teams, routing = router.route(warn)
    assert teams == ("maintenance", "production")
    assert routing == ({"team": "maintenance", "rule": "press trouble"},
                       {"team": "production", "rule": "routes[2]"})
    crit = _event("machine.state_changed", severity=Severity.CRITICAL, attrs={"area": "pressing"})
    assert router.route(crit)[0] == ("oncall",)  # final: later rules not consulted
    other_area = _event("machine.state_changed", attrs={"area": "welding"})
    assert router.route(other_area) == (("general",), ({"team": "general",
                                                        "rule": "default team"},))
    assert router.route(_event("shipment.delayed", source="asn",
                               severity=Severity.NOTICE))[0] == ("purchasing",)
    assert router.route(_event("shipment.delayed", source="asn",
                               severity=Severity.WARNING))[0] == ("general",)


def test_explain_gives_each_rules_reason() -> None:
    router = Router(RULES, "general")
    verdicts = router.explain(_event("machine.state_changed", severity=Severity.NOTICE,
                                     attrs={"area": "welding"}))
    assert [v.matched for v in verdicts] == [False, False, False, False]
    assert verdicts[0].reason == "severity notice is not >=critical"
    assert verdicts[1].reason == "severity notice is not >=warning"
    assert verdicts[2].reason == "attr area='welding' does not match 'press*'"
    assert verdicts[3].reason == ("type 'machine.state_changed' does not match shipment.*")
    final = router.explain(_event("x", severity=Severity.CRITICAL))
    assert final[0].matched and final[0].reason == "all conditions hold"
    assert all(v.reason == "not reached: an earlier final rule matched" for v in final[1:])


def test_route_severity_spellings_are_validated() -> None:
    with pytest.raises(ValueError, match="severity"):
        RouteRule.model_validate({"match": {"severity": "=> warning"}, "teams": ["a"]})
    with pytest.raises(ValueError, match="unknown severity"):
        RouteRule.model_validate({"match": {"severity": ">=urgent"}, "teams": ["a"]})


def test_explain_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "floorstream.yaml"
    config.write_text(f"""\
store: sqlite:///{tmp_path}/fs.db
default_team: general
teams: {{maintenance: {{}}, production: {{}}, general: {{}}}}
routes:
  - name: press trouble
    match: {{source: presses, severity: ">=warning"}}
    teams: [maintenance]
  - match: {{type: "machine.*"}}
    teams: [production]
""", encoding="utf-8")
    code = main(["explain", "-c", str(config), "--source", "presses", "--type",
                 "machine.state_changed", "--severity", "critical"])
    out = capsys.readouterr().out
    assert code == 0
    assert "teams: maintenance, production" in out
    assert "✓ press trouble: all conditions hold → maintenance" in out
    assert "✓ routes[1]: all conditions hold → production" in out
    main(["explain", "-c", str(config), "--source", "erp", "--type", "record.created"])
    out = capsys.readouterr().out
    assert "teams: general" in out
    assert "✗ press trouble: source 'erp' does not match presses" in out
    assert "✗ routes[1]: type 'record.created' does not match machine.*" in out
    assert main(["explain", "-c", str(config)]) == 2


def _renderer(templates: dict[str, Any]) -> Renderer:
    """A renderer with every installed plugin's default phrases, as the pipeline builds it."""
    return Renderer(templates, phrase_book())
