"""The ballot form: one builder for every ballot kind the rules declare.

``build_ballot_form`` makes a WTForms form with one field (two for consent) per proposal the
member may vote on, named ``p<proposal id>`` (and ``r<proposal id>`` for a consent reason). The
form checks shape only (numbers, ranges, choices, duplicate ranks); the rule's
``validate_ballot``, run by ``operations.cast_ballot``, checks meaning (credits, counts, shares,
reasons) and its messages come back here with ``attach_errors``.

Per kind (``BallotKind``):

* approval: a checkbox per proposal; when the rule limits the cost of a ballot
  (``max_ballot_cost``) the page shows a knapsack bar of the money left;
* points: a whole number per proposal (votes for ``quadratic``, dots for ``cumulative``) and a
  credit or dot counter;
* scores: a select of the rule's range per proposal (blank = no opinion);
* ranking: a select of the place (1 = favourite) per proposal, blank = not ranked;
* consent: consent / concern / objection / no response per proposal, and a reason;
* allocation: an amount per proposal from a personal share (or the member's own money).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wtforms import BooleanField, IntegerField, RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional

from fundcircle.errors import FundcircleError, ValidationError
from fundcircle.forms import BaseForm
from fundcircle.ledger.money import format_amount, format_money, parse_amount
from fundcircle.voting.base import BallotKind, ConsentResponse

FIELD_RE = re.compile(r"^p([1-9][0-9]{0,17})$")
REASON_MAX_CHARS = 2000
CONSENT_LABELS = {
    "consent": "Consent: I can live with it",
    "concern": "Concern: I can live with it, but want this noted",
    "objection": "Objection: it would harm the circle",
    "": "No response",
}


@dataclass(frozen=True)
class BallotProposal:
    """A proposal as the ballot shows it."""

    id: int
    title: str
    summary: str
    amount_minor: int
    currency: str

    @property
    def field_name(self) -> str:
        return f"p{self.id}"

    @property
    def reason_name(self) -> str:
        return f"r{self.id}"


@dataclass(frozen=True)
class BallotRules:
    """What the form needs to know about the round's rule, in plain figures."""

    rule_id: str
    kind: BallotKind
    params: Mapping[str, Any]
    currency: str
    budget_minor: int

    # -- per-kind limits (None = no limit) ----------------------------------------------------
    @property
    def is_quadratic(self) -> bool:
        return self.kind is BallotKind.POINTS and "credits" in self.params

    @property
    def credits(self) -> int | None:
        """Voice credits (quadratic) or dots (cumulative) each member has."""
        if self.kind is not BallotKind.POINTS:
            return None
        return int(self.params["credits"] if self.is_quadratic else self.params["total_points"])

    @property
    def points_per_proposal_max(self) -> int | None:
        if self.kind is not BallotKind.POINTS:
            return None
        if self.is_quadratic:
            cap = self.params.get("max_votes_per_proposal")
            bound = math.isqrt(int(self.params["credits"]))  # more votes than this cost more than the credits
            return bound if cap is None else min(bound, int(cap))
        cap = self.params.get("max_per_proposal")
        total = int(self.params["total_points"])
        return total if cap is None else min(total, int(cap))

    @property
    def allow_negative(self) -> bool:
        return bool(self.is_quadratic and self.params.get("allow_negative"))

    @property
    def score_range(self) -> tuple[int, int]:
        return int(self.params.get("min_score", 0)), int(self.params.get("max_score", 5))

    @property
    def approval_bounds(self) -> tuple[int, int | None]:
        # lottery ballots have no minimum (its min_approvals_to_enter is about proposals, not ballots)
        return int(self.params.get("min_approvals") or 0), self.params.get("max_approvals")

    @property
    def ballot_cost_limit_minor(self) -> int | None:
        """The knapsack limit: most the approved proposals may cost together."""
        limit = self.params.get("max_ballot_cost") if self.kind is BallotKind.APPROVAL else None
        return None if limit is None else int(limit)

    @property
    def share_minor(self) -> int | None:
        """A member's personal share to allocate (None: the member gives their own money)."""
        if self.kind is not BallotKind.ALLOCATION:
            return None
        if self.params.get("share") is not None:
            return int(self.params["share"])
        if self.params.get("members"):
            return self.budget_minor // int(self.params["members"])
        return None

    @property
    def ranked_bounds(self) -> tuple[int, int | None]:
        return int(self.params.get("min_ranked", 1)), self.params.get("max_ranked")

    def money(self, amount_minor: int) -> str:
        return format_money(amount_minor, self.currency)

    def explain(self) -> list[str]:
        """The round's parameters as plain sentences, shown under the rule's description."""
        out: list[str] = []
        kind = self.kind
        if kind is BallotKind.APPROVAL:
            low, high = self.approval_bounds
            if high is not None:
                out.append(f"Approve between {low} and {high} proposals." if low else
                           f"Approve at most {high} proposals.")
            elif low:
                out.append(f"Approve at least {low} proposal{'s' if low != 1 else ''}; there is no upper limit.")
            else:
                out.append("Approve as many proposals as you like.")
            if self.ballot_cost_limit_minor is not None:
                out.append(f"The proposals you approve may cost at most {self.money(self.ballot_cost_limit_minor)} "
                           f"together: think of it as your own share of the budget.")
        elif kind is BallotKind.POINTS and self.is_quadratic:
            out.append(f"You have {self.credits} voice credits. Votes on one proposal cost the square of their "
                       f"number: 1 vote costs 1 credit, 2 votes 4, 3 votes 9, 10 votes 100.")
            if self.allow_negative:
                out.append("You may also vote against a proposal (a negative number); that costs the same.")
            if self.params.get("max_votes_per_proposal") is not None:
                out.append(f"At most {self.params['max_votes_per_proposal']} votes on one proposal.")
        elif kind is BallotKind.POINTS:
            out.append(f"You have {self.credits} dots to place"
                       + (", and must place all of them." if self.params.get("must_spend_all") else "."))
            if self.params.get("max_per_proposal") is not None:
                out.append(f"At most {self.params['max_per_proposal']} dots on one proposal.")
            if self.params.get("min_total"):
                out.append(f"Place at least {self.params['min_total']}.")
        elif kind is BallotKind.SCORES:
            low, high = self.score_range
            out.append(f"Give each proposal a score from {low} (lowest) to {high} (highest), or leave it blank "
                       f"if you have no opinion: a blank adds nothing to its total.")
        elif kind is BallotKind.RANKING:
            low, high = self.ranked_bounds
            text = f"Number the proposals you support: 1 for your favourite, 2 for the next, and so on. Rank at " \
                   f"least {low}"
            out.append(text + (f" and at most {high}." if high is not None else "; leave the others blank."))
        elif kind is BallotKind.CONSENT:
            quorum = self.params.get("quorum")
            if quorum is not None:
                out.append(f"A proposal needs responses from at least {_share_words(quorum)} of the members who may "
                           f"vote on it, and no unresolved objection.")
            if self.params.get("require_reason", True):
                out.append("A concern or an objection needs a reason: the applicant and the circle read it.")
        elif kind is BallotKind.ALLOCATION:
            share = self.share_minor
            if share is not None:
                out.append(f"Your share to spend is {self.money(share)}. Whatever you do not give stays in the pot.")
            else:
                out.append("Give what you want to each proposal; the circle's pool adds a match.")
            cap = self.params.get("max_per_member_per_proposal")
            if cap is not None:
                out.append(f"At most {self.money(int(cap))} to one proposal.")
        return out


def _share_words(value: Any) -> str:
    from fractions import Fraction

    frac = Fraction(str(value))
    percent = frac * 100
    return f"{int(percent)}%" if percent.denominator == 1 else f"{float(percent):.1f}%"


class BallotFormBase(BaseForm):
    """Fields are added per proposal by ``build_ballot_form``; see the module docstring."""

    rules: BallotRules
    proposals: Sequence[BallotProposal]

    # -- reading ------------------------------------------------------------------------------
    def proposal_field(self, proposal: BallotProposal) -> Any:
        return self[proposal.field_name]

    def reason_field(self, proposal: BallotProposal) -> Any:
        return self[proposal.reason_name]

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        kind = self.rules.kind
        if kind is BallotKind.RANKING:
            ok = self._check_ranks() and ok
        elif kind is BallotKind.CONSENT:
            ok = self._check_reasons() and ok
        elif kind is BallotKind.ALLOCATION:
            ok = self._check_amounts() and ok
        return ok

    def _check_ranks(self) -> bool:
        by_rank: dict[str, list[BallotProposal]] = {}
        for p in self.proposals:
            rank = self.proposal_field(p).data
            if rank:
                by_rank.setdefault(rank, []).append(p)
        ok = True
        for rank, same in by_rank.items():
            if len(same) > 1:
                ok = False
                for p in same:
                    others = ", ".join(f"“{o.title}”" for o in same if o.id != p.id)
                    self.proposal_field(p).errors.append(f"Place {rank} is also given to {others}; "
                                                         f"give each proposal its own place.")
        return ok

    def _check_reasons(self) -> bool:
        ok = True
        for p in self.proposals:
            response, reason = self.proposal_field(p).data or "", (self.reason_field(p).data or "").strip()
            if reason and not response:
                self.proposal_field(p).errors.append("You wrote a reason: choose consent, concern or objection too.")
                ok = False
            elif response in ("concern", "objection") and not reason and self.rules.params.get("require_reason", True):
                # the rule says the same; checked here too so every problem shows at once
                self.reason_field(p).errors.append(f"A{'n' if response == 'objection' else ''} {response} needs a "
                                                   f"reason.")
                ok = False
        return ok

    def _check_amounts(self) -> bool:
        ok = True
        for p in self.proposals:
            field = self.proposal_field(p)
            if (field.data or "").strip():
                try:
                    parse_amount(field.data, self.rules.currency, field=field.name)
                except FundcircleError as err:
                    field.errors.extend(err.field_errors.get(field.name) or [err.user_message])
                    ok = False
        return ok

    # -- the ballot the member sends ------------------------------------------------------------
    def choices(self) -> Any:
        """The ballot in the shape ``operations.cast_ballot`` takes (after ``validate``)."""
        kind = self.rules.kind
        if kind is BallotKind.APPROVAL:
            return [p.id for p in self.proposals if self.proposal_field(p).data]
        if kind is BallotKind.POINTS:
            return {p.id: int(v) for p in self.proposals if (v := self.proposal_field(p).data)}
        if kind is BallotKind.SCORES:
            return {p.id: int(v) for p in self.proposals if (v := self.proposal_field(p).data) not in (None, "")}
        if kind is BallotKind.RANKING:
            ranked = [(int(v), p.id) for p in self.proposals if (v := self.proposal_field(p).data)]
            return [pid for _rank, pid in sorted(ranked)]
        if kind is BallotKind.CONSENT:
            return {p.id: (v, (self.reason_field(p).data or "").strip())
                    for p in self.proposals if (v := self.proposal_field(p).data)}
        if kind is BallotKind.ALLOCATION:
            out = {}
            for p in self.proposals:
                text = (self.proposal_field(p).data or "").strip()
                if text and (amount := parse_amount(text, self.rules.currency, field=p.field_name)):
                    out[p.id] = amount
            return out
        raise ValidationError("This round's rule takes no ballot.")

    # -- errors from the operation ------------------------------------------------------------
    def attach_errors(self, err: FundcircleError) -> None:
        """Put the operation's (the rule's) messages next to the fields they are about."""
        by_id = {str(p.id): p for p in self.proposals}
        placed = False
        for key, messages in err.field_errors.items():
            proposal = by_id.get(str(key))
            if proposal is None:
                continue
            target = self.proposal_field(proposal)
            if self.rules.kind is BallotKind.CONSENT and any("reason" in m for m in messages):
                target = self.reason_field(proposal)
            target.errors = list(target.errors) + [_sentence(m) for m in messages]
            placed = True
        # the whole-ballot message ("costs 120 credits but you have 100") always goes on top
        if not placed or any(key not in by_id for key in err.field_errors) or not err.field_errors:
            self.form_errors.append(err.user_message)

    # -- figures shown on the page (the live counter starts from these) -----------------------
    def tallies(self) -> dict[str, Any]:
        """What the member's current entries add up to (invalid entries count as 0)."""
        kind = self.rules.kind
        out: dict[str, Any] = {}
        if kind is BallotKind.POINTS:
            values = [_int_or_zero(self.proposal_field(p).data) for p in self.proposals]
            used = sum(v * v for v in values) if self.rules.is_quadratic else sum(values)
            out.update(used=used, total=self.rules.credits, left=(self.rules.credits or 0) - used)
        elif kind is BallotKind.APPROVAL:
            chosen = [p for p in self.proposals if self.proposal_field(p).data]
            out.update(count=len(chosen), cost_minor=sum(p.amount_minor for p in chosen))
            limit = self.rules.ballot_cost_limit_minor
            if limit is not None:
                out.update(limit_minor=limit, left_minor=limit - out["cost_minor"])
        elif kind is BallotKind.ALLOCATION:
            given = 0
            for p in self.proposals:
                try:
                    text = (self.proposal_field(p).data or "").strip()
                    given += parse_amount(text, self.rules.currency) if text else 0
                except FundcircleError:
                    pass
            out.update(given_minor=given)
            if self.rules.share_minor is not None:
                out.update(share_minor=self.rules.share_minor, left_minor=self.rules.share_minor - given)
        return out

    def votes_cost(self, proposal: BallotProposal) -> int:
        """Quadratic cost of the votes currently entered for one proposal."""
        value = _int_or_zero(self.proposal_field(proposal).data)
        return value * value


def _int_or_zero(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def build_ballot_form(rules: BallotRules, proposals: Sequence[BallotProposal], *,
                      stored: Any = None, formdata: Any = None) -> BallotFormBase:
    """A form for ``proposals`` (the ones this member may vote on, recusals left out).

    Args:
        stored: the member's current ballot (rule-side value, ``operations.ballot_of``) to prefill
            on GET; ignored when ``formdata`` is given.
        formdata: the POSTed form (``request.form``); None on GET.
    """
    fields: dict[str, Any] = {}
    kind = rules.kind
    n = len(proposals)
    for p in proposals:
        label = p.title
        if kind is BallotKind.APPROVAL:
            fields[p.field_name] = BooleanField(label)
        elif kind is BallotKind.POINTS:
            top = rules.points_per_proposal_max
            low = -top if (rules.allow_negative and top is not None) else 0
            noun = "votes" if rules.is_quadratic else "dots"
            fields[p.field_name] = IntegerField(
                f"{noun.capitalize()} for “{label}”",
                validators=[Optional(), NumberRange(min=low, max=top,
                                                    message=f"Enter a whole number of {noun} from {low} to {top}.")])
        elif kind is BallotKind.SCORES:
            low, high = rules.score_range
            fields[p.field_name] = SelectField(
                f"Score for “{label}”", validators=[Optional()],
                choices=[SelectChoice("", "No opinion")] + [SelectChoice(str(v)) for v in range(low, high + 1)])
        elif kind is BallotKind.RANKING:
            _low, high = rules.ranked_bounds
            places = n if high is None else min(n, int(high))
            fields[p.field_name] = SelectField(
                f"Place for “{label}”", validators=[Optional()],
                choices=[SelectChoice("", "Not ranked")] + [SelectChoice(str(v)) for v in range(1, places + 1)])
        elif kind is BallotKind.CONSENT:
            fields[p.field_name] = RadioField(
                f"Your response to “{label}”", validators=[Optional()], default="",
                choices=[SelectChoice(k, v) for k, v in CONSENT_LABELS.items()])
            fields[p.reason_name] = TextAreaField(f"Reason for your concern or objection to “{label}”",
                                                  validators=[Length(max=REASON_MAX_CHARS)])
        elif kind is BallotKind.ALLOCATION:
            fields[p.field_name] = StringField(f"Amount for “{label}” ({rules.currency})",
                                               validators=[Length(max=30)])
        else:
            raise ValidationError("This round's rule takes no ballot.")
    form_class = type("BallotForm", (BallotFormBase,), fields)
    data = None if formdata is not None else prefill_data(rules, proposals, stored)
    form: BallotFormBase = form_class(formdata=formdata, data=data)
    form.rules = rules
    form.proposals = list(proposals)
    return form


def prefill_data(rules: BallotRules, proposals: Sequence[BallotProposal], stored: Any) -> dict[str, Any]:
    """Form data from a stored rule-side ballot value (see ``ballots.value_from_items``)."""
    data: dict[str, Any] = {}
    if stored is None:
        return data
    kind = rules.kind
    for p in proposals:
        key = str(p.id)
        if kind is BallotKind.APPROVAL:
            data[p.field_name] = key in stored
        elif kind is BallotKind.RANKING:
            data[p.field_name] = str(list(stored).index(key) + 1) if key in stored else ""
        elif kind is BallotKind.CONSENT:
            answer = stored.get(key)
            if isinstance(answer, ConsentResponse):
                data[p.field_name] = answer.response.value
                data[p.reason_name] = answer.reason
        elif kind is BallotKind.ALLOCATION:
            if key in stored:
                data[p.field_name] = format_amount(int(stored[key]), rules.currency, grouping=False)
        elif kind is BallotKind.SCORES:
            if key in stored:
                data[p.field_name] = str(stored[key])
        elif key in stored:
            data[p.field_name] = int(stored[key])
    return data


def posted_foreign_choices(kind: BallotKind, formdata: Mapping[str, Any], known_ids: set[int]) -> Any:
    """Choices POSTed for proposals that are not on this member's form (typed by hand, or a form
    from before a recusal): passed on to the operation, which refuses them with a clear reason,
    rather than silently dropped. Returns None when there are none."""
    extra: dict[int, Any] = {}
    for key in formdata:
        match = FIELD_RE.match(key)
        if match and int(match.group(1)) not in known_ids:
            extra[int(match.group(1))] = formdata.get(key)
    if not extra:
        return None
    if kind is BallotKind.CONSENT:
        return {pid: (str(v or ""), str(formdata.get(f"r{pid}") or "")) for pid, v in extra.items()}
    if kind in (BallotKind.APPROVAL, BallotKind.RANKING):
        return list(extra)
    return {pid: str(v or "") for pid, v in extra.items()}


def merge_choices(kind: BallotKind, choices: Any, extra: Any) -> Any:
    if extra is None:
        return choices
    if isinstance(choices, list):
        return choices + [pid for pid in extra if pid not in choices]
    merged = dict(choices)
    merged.update(extra)
    return merged


def describe_ballot(rules: BallotRules, proposals: Sequence[BallotProposal], value: Any) -> list[tuple[str, str]]:
    """(proposal title, what the ballot gives it) for a stored rule-side ballot value, in the
    ballot's own order (a ranking best first), for the receipt page."""
    titles = {str(p.id): p.title for p in proposals}
    kind = rules.kind
    rows: list[tuple[str, str]] = []
    if kind is BallotKind.APPROVAL:
        rows = [(titles.get(pid, f"#{pid}"), "approved") for pid in sorted(value, key=int)]
    elif kind is BallotKind.RANKING:
        rows = [(titles.get(pid, f"#{pid}"), f"place {n}") for n, pid in enumerate(value, start=1)]
    elif kind is BallotKind.CONSENT:
        for pid, answer in sorted(value.items(), key=lambda kv: int(kv[0])):
            text = answer.response.value + (f": “{answer.reason}”" if answer.reason else "")
            rows.append((titles.get(pid, f"#{pid}"), text))
    elif kind is BallotKind.POINTS:
        for pid, votes in sorted(value.items(), key=lambda kv: int(kv[0])):
            text = (f"{votes} vote{'s' if abs(votes) != 1 else ''} ({votes * votes} credits)" if rules.is_quadratic
                    else f"{votes} dot{'s' if votes != 1 else ''}")
            rows.append((titles.get(pid, f"#{pid}"), text))
    elif kind is BallotKind.SCORES:
        rows = [(titles.get(pid, f"#{pid}"), f"score {score}") for pid, score in
                sorted(value.items(), key=lambda kv: int(kv[0]))]
    elif kind is BallotKind.ALLOCATION:
        rows = [(titles.get(pid, f"#{pid}"), rules.money(amount)) for pid, amount in
                sorted(value.items(), key=lambda kv: int(kv[0]))]
    return rows
