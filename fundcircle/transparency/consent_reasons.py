"""The reasons members gave with their concerns and objections in a consent round, per proposal,
for the public results page.

Read from the stored tally trace, like the page's "why" (voting.rules.consent writes a ``concern``
step per concern and a ``resolved`` step per resolved objection, each with ``data.reason``, and
puts the open objections' reasons in its ``block`` step's ``data.objections``), so the page shows
exactly what the tally saw. The trace holds no ballot, receipt or name, and the rule sorts each
proposal's reasons, so neither who gave a reason nor the order ballots came in can be read here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OPEN_OBJECTION = "objection"
RESOLVED_OBJECTION = "resolved objection"
CONCERN = "concern"

#: kind -> the words before the reason on the page
LABELS = {OPEN_OBJECTION: "Objection (not resolved)", RESOLVED_OBJECTION: "Objection (resolved)",
          CONCERN: "Concern"}
#: how they are listed under a proposal: what blocks first, what never blocks last
_ORDER = (OPEN_OBJECTION, RESOLVED_OBJECTION, CONCERN)


@dataclass(frozen=True)
class StatedReason:
    """One concern or objection, as its reason reads (empty when the round asked for none)."""

    kind: str
    reason: str

    @property
    def label(self) -> str:
        return LABELS[self.kind]


def reasons_by_proposal(trace: Iterable[Any]) -> dict[str, tuple[StatedReason, ...]]:
    """Proposal id -> its stated reasons (open objections, resolved objections, then concerns, each
    in trace order). Proposals nobody raised anything about are left out; malformed steps are
    skipped, since a stored result must still render."""
    found: dict[str, dict[str, list[str]]] = {}
    for step in trace:
        if not isinstance(step, Mapping) or step.get("proposal_id") is None:
            continue
        data = step.get("data") if isinstance(step.get("data"), Mapping) else {}
        action = step.get("action")
        if action in ("concern", "resolved") and isinstance(data.get("reason"), str):
            kind, reasons = (CONCERN if action == "concern" else RESOLVED_OBJECTION), [data["reason"]]
        elif action == "block" and isinstance(data.get("objections"), list):
            kind, reasons = OPEN_OBJECTION, [r for r in data["objections"] if isinstance(r, str)]
        else:
            continue
        found.setdefault(str(step["proposal_id"]), {}).setdefault(kind, []).extend(reasons)
    return {pid: tuple(StatedReason(kind, reason) for kind in _ORDER for reason in kinds.get(kind, ()))
            for pid, kinds in found.items()}
