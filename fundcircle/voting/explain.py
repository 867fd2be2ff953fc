"""Plain-language "why" for each proposal of a tallied round, drawn from the tally's trace.

Pure: no Flask, no database. The input is what a round result stores (``Outcome.to_json()``'s
``funded`` and ``trace``, or an ``Outcome`` itself); the output is one ``Explanation`` per proposal
for the results page and the open data. Nothing here decides anything: the funded amounts come
from the outcome, and every sentence comes from a trace step (with proposal ids replaced by
titles where a step names another proposal), so the page can never explain a result the rule did
not reach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fundcircle.voting.base import TraceStep

#: steps that settle a proposal's fate (the last of these about a proposal is its main reason)
DECISIVE_ACTIONS = frozenset({"fund", "skip", "screen", "block", "no_quorum", "eliminate", "stop", "cap", "scale"})
#: round-level steps that explain a proposal that no step names (e.g. "no ballots were cast")
ROUND_LEVEL_ACTIONS = frozenset({"stop", "done", "info"})


@dataclass(frozen=True)
class Explanation:
    """Why one proposal was funded or not."""

    proposal_id: str
    is_funded: bool
    #: the amount the outcome gives it (0 when not funded)
    amount_minor: int
    #: one sentence: the decisive trace step (or the round-level reason when no step names it)
    summary: str
    #: every sentence about this proposal in trace order (the summary included), for "details"
    details: tuple[str, ...]
    #: rank of the proposal in the rule's selection order (1 = selected first); None if not funded
    selection_position: int | None = None
    #: IRV-style rules: the proposal's votes per counting round, from the round steps' data
    votes_by_round: tuple[int, ...] = ()


def _step(raw: TraceStep | Mapping[str, Any]) -> TraceStep:
    if isinstance(raw, TraceStep):
        return raw
    return TraceStep(action=str(raw.get("action", "info")), message=str(raw.get("message", "")),
                     proposal_id=None if raw.get("proposal_id") is None else str(raw["proposal_id"]),
                     data=dict(raw.get("data") or {}))


def _with_titles(step: TraceStep, title_of: Callable[[str], str]) -> str:
    """The step's sentence, with another proposal's bare id replaced by its quoted title.

    Only ids the step's data names are replaced (``tied_with``), so numbers that happen to look
    like an id (amounts, counts) are never touched.
    """
    message = step.message
    other = step.data.get("tied_with") if isinstance(step.data, Mapping) else None
    if other is not None:
        other_id = str(other)
        name = f"“{title_of(other_id)}”"
        message = message.replace(f"Tied with {other_id} ", f"Tied with {name} ")
        message = message.replace(f"; {other_id} goes first", f"; {name} goes first")
    return message


def explain(
    proposal_ids: Sequence[str],
    funded: Mapping[str, int],
    trace: Iterable[TraceStep | Mapping[str, Any]],
    titles: Mapping[str, str] | None = None,
) -> dict[str, Explanation]:
    """One Explanation per proposal id in ``proposal_ids`` (in that order).

    Args:
        proposal_ids: the proposals that were on the ballot (str ids, as the rule saw them).
        funded: ``Outcome.funded`` — proposal id -> amount_minor, in selection order.
        trace: the outcome's trace, as TraceStep objects or their stored JSON.
        titles: proposal id -> title, used where a step names another proposal by id.
    """
    titles = dict(titles or {})

    def title_of(pid: str) -> str:
        return titles.get(pid, f"proposal {pid}")

    steps = [_step(s) for s in trace]
    funded_ids = [str(pid) for pid in funded]
    position = {pid: n for n, pid in enumerate(funded_ids, start=1)}
    own: dict[str, list[TraceStep]] = {str(pid): [] for pid in proposal_ids}
    round_level: list[TraceStep] = []
    wins = [s for s in steps if s.action == "win" and s.proposal_id is not None]
    votes_by_round: dict[str, list[int]] = {str(pid): [] for pid in proposal_ids}
    for step in steps:
        if step.proposal_id is not None and step.proposal_id in own:
            own[step.proposal_id].append(step)
        elif step.proposal_id is None:
            round_level.append(step)
            # elimination rules record every continuing proposal's votes in each counting round
            if step.action == "round" and isinstance(step.data.get("votes"), Mapping):
                for pid, count in step.data["votes"].items():
                    if str(pid) in votes_by_round and isinstance(count, int):
                        votes_by_round[str(pid)].append(count)

    explanations: dict[str, Explanation] = {}
    for raw_pid in proposal_ids:
        pid = str(raw_pid)
        is_funded = pid in position
        amount_minor = int(funded[pid]) if is_funded else 0  # type: ignore[index]
        mine = own[pid]
        details = tuple(dict.fromkeys(_with_titles(s, title_of) for s in mine if s.message))
        summary = _summary(mine, round_level, is_funded, title_of)
        if not mine and not is_funded and wins and votes_by_round[pid]:
            winner = wins[-1]
            summary = (f"Not funded: “{title_of(str(winner.proposal_id))}” won the count; this proposal had "
                       f"{votes_by_round[pid][-1]:,} vote{'' if votes_by_round[pid][-1] == 1 else 's'} "
                       f"in the last round.")
        if summary and summary not in details:
            details = (*details, summary) if mine else (summary,)
        explanations[pid] = Explanation(
            proposal_id=pid, is_funded=is_funded, amount_minor=amount_minor, summary=summary, details=details,
            selection_position=position.get(pid), votes_by_round=tuple(votes_by_round[pid]))
    return explanations


def _summary(mine: Sequence[TraceStep], round_level: Sequence[TraceStep], is_funded: bool,
             title_of: Callable[[str], str]) -> str:
    """The one sentence to show first: the last decisive step about the proposal that agrees with
    the outcome; failing that, the round-level reason; failing that, a neutral statement."""
    agreeing = [s for s in mine if s.action in DECISIVE_ACTIONS and (s.action == "fund") == is_funded]
    if agreeing:
        return _with_titles(agreeing[-1], title_of)
    if is_funded:
        # e.g. an IRV winner or a consent pass whose funding step is round-level
        positive = [s for s in mine if s.action in ("win", "pass")]
        if positive:
            return _with_titles(positive[-1], title_of)
        return "Funded: the rule selected it."
    # Not funded although a step says "fund" (e.g. Equal Shares replaced by the most-votes-first
    # outcome after a comparison): the round-level step that overrode it explains the change.
    overriding = [s for s in round_level if s.action in ROUND_LEVEL_ACTIONS]
    if mine and overriding:
        return f"Not funded in the end: {overriding[-1].message}"
    if mine:
        return _with_titles(mine[-1], title_of)
    stops = [s for s in round_level if s.action in ("stop", "done")]
    if stops:
        return stops[-1].message
    return "Not funded: the rule did not select it."
