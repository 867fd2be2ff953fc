"""Rules by stable id, including third-party rules from the ``fundcircle.rules`` entry points."""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from fundcircle.errors import NotFound
from fundcircle.voting.base import Rule

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "fundcircle.rules"

# Built-in rule modules; each defines one Rule subclass decorated with @register.
BUILTIN_MODULES = (
    "approval_greedy", "mes", "phragmen", "quadratic", "consent", "score", "borda", "irv",
    "cumulative", "equal_allocation", "quadratic_funding", "lottery",
)

_rules: dict[str, type[Rule]] = {}
_loaded = False


class UnknownRule(NotFound):
    """No rule is registered under that id."""


def register(rule_cls: type[Rule]) -> type[Rule]:
    """Class decorator: add a rule under its id (an id registered twice is a programming error)."""
    existing = _rules.get(rule_cls.id)
    if existing is not None and existing is not rule_cls:
        raise ValueError(f"rule id {rule_cls.id!r} is registered twice ({existing!r}, {rule_cls!r})")
    _rules[rule_cls.id] = rule_cls
    return rule_cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(f"fundcircle.voting.rules.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fundcircle.voting.rules.{module}":
                raise
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception:  # a broken plugin must not take the app down
            log.exception("could not load rule plugin %s", ep.value)
            continue
        if isinstance(obj, type) and issubclass(obj, Rule):
            register(obj)
        else:
            log.error("plugin %s does not name a Rule subclass", ep.value)


def get_rule(rule_id: str) -> Rule:
    """An instance of the rule registered as ``rule_id``; UnknownRule otherwise."""
    _load()
    try:
        return _rules[rule_id]()
    except KeyError:
        raise UnknownRule(f"unknown voting rule {rule_id!r}; installed: {', '.join(sorted(_rules))}") from None


def all_rules() -> list[type[Rule]]:
    _load()
    return [_rules[k] for k in sorted(_rules)]
