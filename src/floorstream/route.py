"""Which teams get a post.

Every rule whose ``match`` fits adds its teams, in config order; a rule with ``final: true``
stops the search when it matches. A post nobody matched goes to the default team, so nothing is
routed into the void. :meth:`Router.explain` tells, rule by rule, why a post went where it went.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from floorstream.model import Event, Severity

__all__ = ["RouteMatch", "RouteRule", "Router", "RuleVerdict"]

_SEVERITY = re.compile(r"^\s*(>=|<=|==|>|<)?\s*([A-Za-z]+)\s*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt,
}


def _globs(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


class RouteMatch(BaseModel):
    """Conditions of a rule; all given ones must hold. Strings are shell-style globs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | list[str] | None = None
    type: str | list[str] | None = None
    subject: str | list[str] | None = None
    severity: str | None = Field(
        default=None, description="'warning' or '>=warning' (at least), '<notice', '==critical'")
    attrs: dict[str, str] = Field(default_factory=dict, description="attr name → glob")

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str | None) -> str | None:
        if value is not None:
            match = _SEVERITY.match(value)
            if not match:
                raise ValueError("expected a severity such as 'warning' or '>=warning'")
            Severity.parse(match.group(2))
        return value


class RouteRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    match: RouteMatch = Field(default_factory=RouteMatch)
    teams: list[str] = Field(min_length=1)
    final: bool = Field(default=False, description="stop looking at later rules when matched")


@dataclass(frozen=True)
class RuleVerdict:
    """One rule's answer for one event: matched, or the first condition that failed."""

    rule: str
    matched: bool
    reason: str
    teams: tuple[str, ...]


class Router:
    def __init__(self, rules: Sequence[RouteRule], default_team: str) -> None:
        self.rules = list(rules)
        self.default_team = default_team
        self._names = [r.name or f"routes[{i}]" for i, r in enumerate(self.rules)]
        self._severity: list[tuple[Callable[[Any, Any], bool], Severity] | None] = []
        for rule in self.rules:
            sev = rule.match.severity
            if sev is None:
                self._severity.append(None)
            else:
                m = _SEVERITY.match(sev)
                assert m is not None
                self._severity.append((_OPS[m.group(1) or ">="], Severity.parse(m.group(2))))

    def route(self, event: Event) -> tuple[tuple[str, ...], tuple[dict[str, str], ...]]:
        """Teams for ``event`` and, per team, the rule that chose it."""
        teams: dict[str, str] = {}
        for index, rule in enumerate(self.rules):
            if self._failure(index, event) is None:
                for team in rule.teams:
                    teams.setdefault(team, self._names[index])
                if rule.final:
                    break
        if not teams:
            teams[self.default_team] = "default team"
        return tuple(teams), tuple({"team": t, "rule": r} for t, r in teams.items())

    def explain(self, event: Event) -> list[RuleVerdict]:
        verdicts = []
        stopped = False
        for index, rule in enumerate(self.rules):
            if stopped:
                verdicts.append(RuleVerdict(self._names[index], False,
                                            "not reached: an earlier final rule matched", ()))
                continue
            failure = self._failure(index, event)
            verdicts.append(RuleVerdict(self._names[index], failure is None,
                                        failure or "all conditions hold", tuple(rule.teams)))
            stopped = failure is None and rule.final
        return verdicts

    def _failure(self, index: int, event: Event) -> str | None:
        m = self.rules[index].match
        for name, globs, actual in (("source", _globs(m.source), event.source),
                                    ("type", _globs(m.type), event.type),
                                    ("subject", _globs(m.subject), event.subject)):
            if globs and not any(fnmatch.fnmatchcase(actual, g) for g in globs):
                return f"{name} {actual!r} does not match {' or '.join(globs)}"
        severity = self._severity[index]
        if severity is not None:
            op, level = severity
            if not op(event.severity, level):
                return f"severity {event.severity.label} is not {m.severity}"
        for key, glob in m.attrs.items():
            actual_attr = event.attrs.get(key)
            if actual_attr is None or not fnmatch.fnmatchcase(actual_attr, glob):
                return f"attr {key}={actual_attr!r} does not match {glob!r}"
        return None
