"""The rule interface: what every voting rule declares and returns.

Pure Python: no Flask, no database. Money is integer minor units; every decision uses ints or
``fractions.Fraction``. A rule is a class with class attributes (id, name, description,
ballot_kind, params) and two methods, ``validate_ballot`` and ``tally``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

from fundcircle.errors import ValidationError


class BallotKind(str, enum.Enum):
    """What a ballot of this rule looks like (``Ballot.value`` type in brackets)."""

    APPROVAL = "approval"  # frozenset[str] of proposal ids
    POINTS = "points"  # dict[str, int]: proposal id -> votes/points (quadratic cost where the rule says)
    SCORES = "scores"  # dict[str, int]: proposal id -> score in the rule's range
    RANKING = "ranking"  # tuple[str, ...]: best first
    CONSENT = "consent"  # dict[str, ConsentResponse]
    ALLOCATION = "allocation"  # dict[str, int]: proposal id -> amount_minor from a personal share
    NONE = "none"  # no ballot needed (e.g. a pure lottery)


class ConsentKind(str, enum.Enum):
    CONSENT = "consent"
    CONCERN = "concern"
    OBJECTION = "objection"


@dataclass(frozen=True)
class ConsentResponse:
    response: ConsentKind
    reason: str = ""
    #: an objection stops blocking once resolved (amendment accepted, withdrawn, or ruled not paramount)
    resolved: bool = False


@dataclass(frozen=True)
class Proposal:
    """A proposal as a rule sees it."""

    id: str
    #: the amount requested, in minor units (>= 0)
    cost_minor: int
    title: str = ""
    #: for allocation rules (Cobudget-style goals); None means "same as cost_minor"
    min_goal_minor: int | None = None
    max_goal_minor: int | None = None
    #: how many members may vote on this proposal (members minus recusals); None = everyone
    eligible_voters: int | None = None


@dataclass(frozen=True, slots=True)
class Ballot:
    """One voter's ballot. ``value``'s type follows the rule's ballot kind (see BallotKind).

    Slots: a tally reads every ballot's value once, and a slotted ballot is one small block instead
    of an object plus its attribute values, so thousands of ballots touch about half the memory."""

    voter_id: str
    value: Any


@dataclass(frozen=True)
class Budget:
    """The money a round can spend, in minor units, and the size of one currency unit."""

    amount_minor: int
    currency: str = "EUR"
    #: minor units per whole currency unit (100 for EUR, 1 for JPY or pabulib's whole-unit files)
    unit_minor: int = 100


@dataclass(frozen=True)
class Param:
    """A typed rule parameter with a default and validation."""

    name: str
    type: type  # int, str, bool, Fraction
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min_value: Any = None
    max_value: Any = None
    #: None allowed as a value (e.g. "no limit")
    optional: bool = False

    def coerce(self, raw: Any) -> Any:
        """Turn a raw value (possibly a CLI/form string) into this parameter's type, or raise."""
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null", "inf")):
            if self.optional:
                return None
            if raw is not None and str(raw).strip().lower() == "none" and self.choices and "none" in self.choices:
                return "none"
            raise ValidationError(f"parameter {self.name!r} needs a value", field_errors={self.name: ["required"]})
        try:
            value: Any
            if self.type is bool:
                if isinstance(raw, bool):
                    value = raw
                elif str(raw).strip().lower() in ("1", "true", "yes", "on"):
                    value = True
                elif str(raw).strip().lower() in ("0", "false", "no", "off"):
                    value = False
                else:
                    raise ValueError
            elif self.type is int:
                if isinstance(raw, bool) or (isinstance(raw, float)):
                    raise ValueError
                value = int(str(raw).strip()) if not isinstance(raw, int) else raw
            elif self.type is Fraction:
                if isinstance(raw, float):
                    raise ValueError
                value = Fraction(str(raw).strip()) if not isinstance(raw, (int, Fraction)) else Fraction(raw)
            else:
                value = str(raw).strip()
        except (ValueError, ZeroDivisionError):
            raise ValidationError(
                f"parameter {self.name!r}: {raw!r} is not a valid {self.type.__name__}",
                field_errors={self.name: [f"must be a {self.type.__name__}"]},
            ) from None
        if self.choices is not None and value not in self.choices:
            raise ValidationError(
                f"parameter {self.name!r} must be one of {', '.join(map(str, self.choices))} (got {value!r})",
                field_errors={self.name: ["not an allowed choice"]},
            )
        if self.min_value is not None and value < self.min_value:
            raise ValidationError(f"parameter {self.name!r} must be at least {self.min_value}",
                                  field_errors={self.name: [f"at least {self.min_value}"]})
        if self.max_value is not None and value > self.max_value:
            raise ValidationError(f"parameter {self.name!r} must be at most {self.max_value}",
                                  field_errors={self.name: [f"at most {self.max_value}"]})
        return value


@dataclass(frozen=True)
class TraceStep:
    """One step of a tally, readable by a person.

    ``action`` is a short machine word (screen, fund, skip, stop, eliminate, tie, info, ...);
    ``proposal_id`` names the proposal it is about (None for round-level steps); ``message`` is a
    plain-language sentence; ``data`` holds JSON-able details (Fractions as "p/q" strings).
    """

    action: str
    message: str
    proposal_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "proposal_id": self.proposal_id, "message": self.message,
                "data": jsonable(self.data)}


@dataclass
class Outcome:
    """What a tally returns."""

    rule_id: str
    #: resolved parameters (every parameter, defaults filled in)
    params: dict[str, Any]
    #: funded proposal id -> amount_minor, in the order the rule selected them
    funded: dict[str, int]
    #: per-proposal score as the rule defines it (votes, points, rho, ...), exact
    scores: dict[str, int | Fraction]
    trace: list[TraceStep]
    seed: str = ""
    budget_minor: int = 0
    #: rule-specific summary figures (e.g. MES per-voter budget reached), JSON-able
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def selected(self) -> list[str]:
        return list(self.funded)

    @property
    def cost_minor(self) -> int:
        return sum(self.funded.values())

    def why(self, proposal_id: str) -> list[str]:
        """The trace's sentences about one proposal, in order."""
        return [s.message for s in self.trace if s.proposal_id == proposal_id]

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "params": jsonable(self.params),
            "budget_minor": self.budget_minor,
            "seed": self.seed,
            "selected": self.selected,
            "funded": dict(self.funded),
            "cost_minor": self.cost_minor,
            "scores": jsonable(self.scores),
            "summary": jsonable(self.summary),
            "trace": [s.to_json() for s in self.trace],
        }


def jsonable(value: Any) -> Any:
    """Exact values made JSON-safe: Fractions become "p/q" strings, sets sorted lists."""
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):  # display-only values; never used for a decision
        return value
    return json.loads(json.dumps(value, default=str))


# Parameter every rule takes (reference voting-rules.md §0).
TIE_ORDER_PARAM = Param(
    "tie_order", str, "cost_asc,votes_desc,lottery",
    help="comma-separated tie-break order; always ends in the seeded lottery",
)


class Rule:
    """Base class of every voting rule. Subclasses set the class attributes and implement tally."""

    id: ClassVar[str]
    name: ClassVar[str]
    #: plain-language description shown to voters before they vote
    description: ClassVar[str]
    ballot_kind: ClassVar[BallotKind]
    params: ClassVar[tuple[Param, ...]] = ()

    @classmethod
    def all_params(cls) -> tuple[Param, ...]:
        names = {p.name for p in cls.params}
        return cls.params + (() if "tie_order" in names else (TIE_ORDER_PARAM,))

    @classmethod
    def resolve_params(cls, raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults filled in, each value coerced and validated; unknown names are an error."""
        raw = dict(raw or {})
        by_name = {p.name: p for p in cls.all_params()}
        unknown = sorted(set(raw) - set(by_name))
        if unknown:
            raise ValidationError(
                f"rule {cls.id!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(by_name))}",
                field_errors={u: ["unknown parameter"] for u in unknown},
            )
        resolved = {}
        for name, param in by_name.items():
            resolved[name] = param.coerce(raw[name]) if name in raw else param.default
        from fundcircle.voting.tiebreak import parse_tie_order  # late: avoid a cycle

        parse_tie_order(resolved["tie_order"])  # validates
        cls.check_params(resolved)
        return resolved

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Cross-parameter validation; raise ValidationError. Default: nothing to check."""

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        """Raise ValidationError (with field_errors keyed by proposal id where useful) if invalid."""
        raise NotImplementedError

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        """Decide. ``params`` must already be resolved (``resolve_params``)."""
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "id": cls.id,
            "name": cls.name,
            "description": cls.description,
            "ballot_kind": cls.ballot_kind.value,
            "params": [
                {"name": p.name, "type": p.type.__name__, "default": jsonable(p.default), "help": p.help,
                 "choices": list(p.choices) if p.choices else None}
                for p in cls.all_params()
            ],
        }


def proposals_by_id(proposals: Iterable[Proposal]) -> dict[str, Proposal]:
    return {p.id: p for p in proposals}
