"""Pure voting rules and their registry. No Flask and no database imports in this package's
pure modules (base, registry, tiebreak, pabulib, rules/); ballots.py/models.py/operations.py are
the database side."""

from fundcircle.voting.base import (  # noqa: F401
    Ballot, BallotKind, Budget, ConsentKind, ConsentResponse, Outcome, Param, Proposal, Rule, TraceStep,
)
from fundcircle.voting.registry import UnknownRule, all_rules, get_rule, register  # noqa: F401
