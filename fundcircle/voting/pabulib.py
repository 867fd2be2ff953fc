"""Read and write pabulib ``.pb`` files (voting-rules.md §1).

A ``.pb`` file has three sections, ``META``, ``PROJECTS`` and ``VOTES``, each a title line, a header
line and ``;``-separated rows. :func:`parse` checks the file (every check of §1.5) and returns the raw
rows; :func:`load` turns a file into rule inputs (``Proposal``, ``Ballot``, ``Budget``);
:func:`dumps` / :func:`write` export an election.

Every problem raises :class:`PabulibError`, whose message names the file, the section, the line and
the column or problem, so a person can fix the file without reading a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Proposal

SECTIONS = ("META", "PROJECTS", "VOTES")
VOTE_TYPES = ("approval", "choose-1", "ordinal", "cumulative", "scoring")
#: the fundcircle ballot kind that holds each pabulib vote type
KIND_BY_VOTE_TYPE = {
    "approval": BallotKind.APPROVAL,
    "choose-1": BallotKind.APPROVAL,
    "ordinal": BallotKind.RANKING,
    "cumulative": BallotKind.POINTS,
    "scoring": BallotKind.SCORES,
}
OBLIGATORY_META = (
    "description", "country", "unit", "instance", "num_projects", "num_votes", "budget",
    "vote_type", "rule", "date_begin", "date_end",
)
REQUIRED_PROJECT_COLUMNS = ("project_id", "cost")
REQUIRED_VOTE_COLUMNS = ("voter_id", "vote")
POINTS_VOTE_TYPES = ("cumulative", "scoring")

_DECIMAL = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_DATE_DMY = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
_DATE_YEAR = re.compile(r"^\d{4}$")
_FUNDCIRCLE_COMMENT = re.compile(r"#1:\s*fundcircle\s+(\S+)\s+(\{.*?\})(?=\s*#\d+:|\s*$)")


class PabulibError(ValidationError):
    """A malformed ``.pb`` file. The message names file, section, line and column or problem."""

    def __init__(self, file: str, problem: str, *, section: str | None = None, line: int | None = None,
                 column: str | None = None) -> None:
        where = [file]
        if section:
            where.append(f"section {section}")
        if line is not None:
            where.append(f"line {line}")
        if column:
            where.append(f"column {column!r}")
        super().__init__(", ".join(where) + f": {problem}")
        self.file = file
        self.section = section
        self.line = line
        self.column = column
        self.problem = problem


@dataclass
class Row:
    """One data row: trimmed fields by column name, and the physical line it started on."""

    line: int
    fields: dict[str, str]


@dataclass
class PbFile:
    """A checked ``.pb`` file, still as text (see :func:`load` for rule inputs)."""

    name: str
    meta: dict[str, str]
    meta_lines: dict[str, int]
    project_columns: list[str]
    projects: list[Row]
    vote_columns: list[str]
    votes: list[Row]

    @property
    def vote_type(self) -> str:
        return self.meta["vote_type"]


@dataclass
class PabulibElection:
    """A ``.pb`` file turned into rule inputs. Costs and the budget are integer minor units:
    ``budget.unit_minor`` minor units make one unit of the file's numbers."""

    name: str
    meta: dict[str, str]
    vote_type: str
    proposals: list[Proposal]
    ballots: list[Ballot]
    budget: Budget
    #: the official outcome {selected == 1}, in file order; None when the file has no `selected` column
    selected: list[str] | None = None
    #: extra per-project columns (name, category, ...) kept for export
    project_extra: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ballot_kind(self) -> BallotKind:
        return KIND_BY_VOTE_TYPE[self.vote_type]

    @property
    def rule_word(self) -> str:
        return self.meta.get("rule", "unknown")

    def to_units(self, amount_minor: int | Fraction) -> Fraction:
        """An amount in the file's own units (exact)."""
        return Fraction(amount_minor) / self.budget.unit_minor


# --- lexical layer ---------------------------------------------------------------------------


def _decode(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PabulibError(name, f"invalid UTF-8 (byte {exc.start})", line=line) from None
    return text[1:] if text.startswith("\ufeff") else text


def _rows(text: str, name: str) -> Iterable[tuple[int, list[str]]]:
    """(first physical line, trimmed fields) for every non-blank CSV record."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
    previous_end = 0
    while True:
        start = previous_end + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise PabulibError(name, f"bad CSV ({exc}); is a quote left unterminated?", line=start) from None
        previous_end = reader.line_num
        fields = [f.strip() for f in record]
        if not any(fields):
            continue
        yield start, fields


def _section_title(fields: list[str]) -> str | None:
    """The upper-case title if this record is a title line (one field, a bare word)."""
    if len(fields) != 1 or not re.fullmatch(r"[A-Za-z_]+", fields[0]):
        return None
    word = fields[0]
    # known titles in any case; an unknown word counts as a title only when written in capitals
    return word.upper() if (word.upper() in SECTIONS or word.isupper()) else None


# --- parse -----------------------------------------------------------------------------------


def parse(source: str | Path | bytes, name: str | None = None) -> PbFile:
    """Read and check a ``.pb`` file (path or bytes). Raises PabulibError on any problem."""
    if isinstance(source, bytes):
        data, name = source, name or "<pb>"
    else:
        path = Path(source)
        name = name or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PabulibError(name, f"cannot read the file ({exc.strerror or exc})") from None
    text = _decode(data, name)
    sections = _split_sections(text, name)
    pb = _build(sections, name)
    _check_meta(pb)
    _check_projects(pb)
    _check_votes(pb)
    return pb


@dataclass
class _Section:
    title: str
    line: int
    header: list[str] = field(default_factory=list)
    header_line: int = 0
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


def _split_sections(text: str, name: str) -> dict[str, _Section]:
    found: dict[str, _Section] = {}
    current: _Section | None = None
    last_line = 0
    for line, fields in _rows(text, name):
        last_line = line
        title = _section_title(fields)
        if title is not None and (current is None or current.header or title in SECTIONS):
            if title not in SECTIONS:
                raise PabulibError(name, f"unknown section title {fields[0]!r} (expected META, PROJECTS or VOTES)",
                                   section=current.title if current else None, line=line)
            if title in found:
                raise PabulibError(name, f"section {title} appears twice (first on line {found[title].line})",
                                   section=title, line=line)
            expected = SECTIONS[len(found)]
            if title != expected:
                raise PabulibError(name, f"section {title} found where {expected} was expected "
                                   f"(sections must be META, PROJECTS, VOTES in this order)",
                                   section=title, line=line)
            current = _Section(title, line)
            found[title] = current
            continue
        if current is None:
            raise PabulibError(name, "the file must start with the title line META", section="META", line=line)
        if not current.header:
            current.header, current.header_line = fields, line
            continue
        current.rows.append((line, fields))
    for title in SECTIONS:
        if title not in found:
            raise PabulibError(name, f"section {title} is missing", section=title, line=last_line + 1)
        if not found[title].header:
            raise PabulibError(name, "the section has no header line", section=title, line=found[title].line)
    return found


def _table(section: _Section, name: str, required: Sequence[str]) -> tuple[list[str], list[Row]]:
    header = [h.lower() for h in section.header]
    seen: set[str] = set()
    for col in header:
        if not col:
            raise PabulibError(name, "empty column name in the header", section=section.title,
                               line=section.header_line)
        if col in seen:
            raise PabulibError(name, "column named twice in the header", section=section.title,
                               line=section.header_line, column=col)
        seen.add(col)
    for col in required:
        if col not in seen:
            raise PabulibError(name, "required column is missing from the header", section=section.title,
                               line=section.header_line, column=col)
    rows = []
    for line, fields in section.rows:
        if len(fields) > len(header):
            raise PabulibError(name, f"{len(fields)} fields but the header names {len(header)} columns",
                               section=section.title, line=line)
        padded = fields + [""] * (len(header) - len(fields))
        row = Row(line, dict(zip(header, padded)))
        for col in required:
            if col != "vote" and not row.fields[col]:
                raise PabulibError(name, "required value is empty", section=section.title, line=line, column=col)
        rows.append(row)
    return header, rows


def _build(sections: dict[str, _Section], name: str) -> PbFile:
    meta_section = sections["META"]
    if [h.lower() for h in meta_section.header] != ["key", "value"]:
        raise PabulibError(name, f"the META header must be exactly 'key;value' (got {';'.join(meta_section.header)!r})",
                           section="META", line=meta_section.header_line)
    meta: dict[str, str] = {}
    meta_lines: dict[str, int] = {}
    for line, fields in meta_section.rows:
        if len(fields) > 2:
            raise PabulibError(name, f"{len(fields)} fields but the header names 2 columns", section="META", line=line)
        key = fields[0].lower()
        value = fields[1] if len(fields) > 1 else ""
        if not key:
            raise PabulibError(name, "empty key", section="META", line=line, column="key")
        if key in meta:
            raise PabulibError(name, f"duplicate META key {key!r} (first on line {meta_lines[key]})",
                               section="META", line=line, column="key")
        meta[key], meta_lines[key] = value, line
    vote_type = meta.get("vote_type", "").strip().lower()
    vote_required = REQUIRED_VOTE_COLUMNS + (("points",) if vote_type in POINTS_VOTE_TYPES else ())
    project_columns, projects = _table(sections["PROJECTS"], name, REQUIRED_PROJECT_COLUMNS)
    vote_columns, votes = _table(sections["VOTES"], name, vote_required)
    return PbFile(name, meta, meta_lines, project_columns, projects, vote_columns, votes)


# --- value parsing ---------------------------------------------------------------------------


def parse_decimal(text: str) -> Fraction:
    """A decimal with '.' or ',' as separator, exactly. ValueError if it is not one."""
    text = text.strip()
    if not _DECIMAL.match(text):
        raise ValueError(text)
    return Fraction(text.replace(",", "."))


def _meta_error(pb: PbFile, key: str, problem: str) -> PabulibError:
    line = pb.meta_lines.get(key, pb.meta_lines and max(pb.meta_lines.values()) or None)
    return PabulibError(pb.name, problem, section="META", line=line, column=key)


def _meta_int(pb: PbFile, key: str, default: int | None = None) -> int | None:
    raw = pb.meta.get(key, "")
    if not raw:
        return default
    if not _INTEGER.match(raw):
        raise _meta_error(pb, key, f"{key} must be an integer (got {raw!r})")
    return int(raw)


def _meta_decimal(pb: PbFile, key: str) -> Fraction | None:
    raw = pb.meta.get(key, "")
    if not raw:
        return None
    try:
        return parse_decimal(raw)
    except ValueError:
        raise _meta_error(pb, key, f"{key} must be a number (got {raw!r})") from None


def _check_date(pb: PbFile, key: str) -> None:
    raw = pb.meta[key]
    match = _DATE_DMY.match(raw)
    if match:
        import datetime

        day, month, year = map(int, match.groups())
        try:
            datetime.date(year, month, day)
        except ValueError:
            raise _meta_error(pb, key, f"{key} {raw!r} is not a real date") from None
        return
    if not _DATE_YEAR.match(raw):
        raise _meta_error(pb, key, f"{key} must be dd.mm.yyyy or yyyy (got {raw!r})")


def _check_meta(pb: PbFile) -> None:
    for key in OBLIGATORY_META:
        if not pb.meta.get(key):
            line = max(pb.meta_lines.values()) + 1 if pb.meta_lines else None
            raise PabulibError(pb.name, f"obligatory META key {key!r} is missing or empty", section="META",
                               line=pb.meta_lines.get(key, line), column=key)
    vote_type = pb.meta["vote_type"].strip().lower()
    if vote_type not in VOTE_TYPES:
        raise _meta_error(pb, "vote_type", f"unknown vote_type {pb.meta['vote_type']!r} "
                                           f"(known: {', '.join(VOTE_TYPES)})")
    pb.meta["vote_type"] = vote_type
    if vote_type == "cumulative" and not pb.meta.get("max_sum_points"):
        raise _meta_error(pb, "vote_type", "a cumulative file needs the META key max_sum_points")
    budget = _meta_decimal(pb, "budget")
    if budget is None or budget <= 0:
        raise _meta_error(pb, "budget", f"budget must be a number > 0 (got {pb.meta['budget']!r})")
    for key in ("date_begin", "date_end"):
        _check_date(pb, key)
    for key in ("min_length", "max_length", "min_points", "max_points", "min_sum_points", "max_sum_points",
                "default_score"):
        _meta_int(pb, key)
    for key in ("min_sum_cost", "max_sum_cost"):
        _meta_decimal(pb, key)
    if _meta_int(pb, "num_projects") != len(pb.projects):
        raise _meta_error(pb, "num_projects", f"num_projects is {pb.meta['num_projects']} "
                                              f"but PROJECTS has {len(pb.projects)} rows")
    if _meta_int(pb, "num_votes") != len(pb.votes):
        raise _meta_error(pb, "num_votes", f"num_votes is {pb.meta['num_votes']} but VOTES has {len(pb.votes)} rows")


def _check_projects(pb: PbFile) -> None:
    seen: dict[str, int] = {}
    for row in pb.projects:
        pid = row.fields["project_id"]
        if pid in seen:
            raise PabulibError(pb.name, f"duplicate project_id {pid!r} (first on line {seen[pid]})",
                               section="PROJECTS", line=row.line, column="project_id")
        seen[pid] = row.line
        try:
            cost = parse_decimal(row.fields["cost"])
        except ValueError:
            raise PabulibError(pb.name, f"cost {row.fields['cost']!r} is not a number", section="PROJECTS",
                               line=row.line, column="cost") from None
        if cost < 0:
            raise PabulibError(pb.name, f"cost {row.fields['cost']!r} is negative", section="PROJECTS",
                               line=row.line, column="cost")
        if "selected" in row.fields and row.fields["selected"] not in ("0", "1", "2", "3"):
            raise PabulibError(pb.name, f"selected must be 0, 1, 2 or 3 (got {row.fields['selected']!r})",
                               section="PROJECTS", line=row.line, column="selected")
        for col in ("votes", "score"):
            value = row.fields.get(col, "")
            if value and not _INTEGER.match(value):
                try:
                    parse_decimal(value)
                except ValueError:
                    raise PabulibError(pb.name, f"{col} {value!r} is not a number", section="PROJECTS",
                                       line=row.line, column=col) from None


def _split_list(text: str) -> list[str]:
    return [] if not text.strip() else [part.strip() for part in text.split(",")]


def _check_votes(pb: PbFile) -> None:
    vote_type = pb.vote_type
    costs = {r.fields["project_id"]: parse_decimal(r.fields["cost"]) for r in pb.projects}
    limits = _ballot_limits(pb)
    votes_count = dict.fromkeys(costs, 0)
    score_sum: dict[str, int] = dict.fromkeys(costs, 0)
    seen: dict[str, int] = {}
    for row in pb.votes:
        voter = row.fields["voter_id"]
        if voter in seen:
            raise PabulibError(pb.name, f"duplicate voter_id {voter!r} (first on line {seen[voter]})",
                               section="VOTES", line=row.line, column="voter_id")
        seen[voter] = row.line
        ids = _split_list(row.fields["vote"])

        def fail(problem: str, column: str = "vote", line: int = row.line) -> PabulibError:
            return PabulibError(pb.name, problem, section="VOTES", line=line, column=column)

        for pid in ids:
            if pid not in costs:
                raise fail(f"unknown project id {pid!r}")
        if len(set(ids)) != len(ids):
            twice = sorted({p for p in ids if ids.count(p) > 1})
            raise fail(f"project id {twice[0]!r} appears twice in one ballot")
        if vote_type == "choose-1" and len(ids) != 1:
            raise fail(f"a choose-1 ballot names exactly one project (this one names {len(ids)})")
        if not limits["min_length"] <= len(ids) <= limits["max_length"]:
            raise fail(f"ballot length {len(ids)} is outside [{limits['min_length']}, {limits['max_length']}]")
        total_cost = sum((costs[p] for p in ids), Fraction(0))
        if total_cost < limits["min_sum_cost"] or (limits["max_sum_cost"] is not None
                                                   and total_cost > limits["max_sum_cost"]):
            raise fail(f"the ballot's total cost {_fmt(total_cost)} is outside "
                       f"[{_fmt(limits['min_sum_cost'])}, {_fmt(limits['max_sum_cost'])}]")
        for pid in ids:
            votes_count[pid] += 1
        if vote_type in POINTS_VOTE_TYPES:
            points = _check_points(pb, row, ids, limits, fail)
            for pid, pts in zip(ids, points):
                score_sum[pid] += pts
        elif vote_type == "ordinal":
            for position, pid in enumerate(ids):
                score_sum[pid] += len(ids) - position  # truncated Borda, as pabulib's `score` column
    _check_project_counts(pb, votes_count, score_sum)


def _check_points(pb: PbFile, row: Row, ids: list[str], limits: dict[str, Any], fail: Any) -> list[int]:
    raw = _split_list(row.fields.get("points", ""))
    if len(raw) != len(ids):
        raise fail(f"{len(raw)} points for {len(ids)} projects (points must align with vote)", "points")
    points = []
    for text in raw:
        if not _INTEGER.match(text):
            raise fail(f"points value {text!r} is not an integer", "points")
        value = int(text)
        if limits["min_points"] is not None and value < limits["min_points"]:
            raise fail(f"points value {value} is below min_points {limits['min_points']}", "points")
        if limits["max_points"] is not None and value > limits["max_points"]:
            raise fail(f"points value {value} is above max_points {limits['max_points']}", "points")
        points.append(value)
    total = sum(points)
    if total < limits["min_sum_points"] or (limits["max_sum_points"] is not None and total > limits["max_sum_points"]):
        raise fail(f"points sum {total} is outside [{limits['min_sum_points']}, {limits['max_sum_points']}]", "points")
    return points


def _ballot_limits(pb: PbFile) -> dict[str, Any]:
    vote_type = pb.vote_type
    max_sum_points = _meta_int(pb, "max_sum_points")
    return {
        "min_length": _meta_int(pb, "min_length", 1),
        "max_length": _meta_int(pb, "max_length", len(pb.projects)),
        "min_sum_cost": _meta_decimal(pb, "min_sum_cost") or Fraction(0),
        "max_sum_cost": _meta_decimal(pb, "max_sum_cost"),
        "min_points": _meta_int(pb, "min_points", 0 if vote_type == "cumulative" else None),
        "max_points": _meta_int(pb, "max_points", max_sum_points if vote_type == "cumulative" else None),
        "min_sum_points": _meta_int(pb, "min_sum_points", 0) if vote_type == "cumulative" else
        _meta_int(pb, "min_sum_points", -(10**18)),
        "max_sum_points": max_sum_points,
    }


def _check_project_counts(pb: PbFile, votes_count: dict[str, int], score_sum: dict[str, int]) -> None:
    score_defined = pb.vote_type in POINTS_VOTE_TYPES or pb.vote_type == "ordinal"
    for row in pb.projects:
        pid = row.fields["project_id"]
        declared = row.fields.get("votes", "")
        if declared and _INTEGER.match(declared) and int(declared) != votes_count[pid]:
            raise PabulibError(pb.name, f"votes says {declared} but {votes_count[pid]} ballots name project {pid!r}",
                               section="PROJECTS", line=row.line, column="votes")
        declared = row.fields.get("score", "")
        if score_defined and declared and _INTEGER.match(declared) and int(declared) != score_sum[pid]:
            raise PabulibError(pb.name, f"score says {declared} but the ballots give project {pid!r} "
                               f"{score_sum[pid]}", section="PROJECTS", line=row.line, column="score")


def _fmt(value: Fraction | None) -> str:
    if value is None:
        return "∞"
    return str(value.numerator) if value.denominator == 1 else str(float(value))


# --- load: rule inputs -----------------------------------------------------------------------


def _decimal_scale(values: Iterable[Fraction]) -> int:
    """The least power of ten that makes every value an integer (decimal inputs only)."""
    scale = 1
    for value in values:
        while (value * scale).denominator != 1:
            scale *= 10
            if scale > 10**12:
                raise ValueError("too many decimals")
    return scale


def load(source: str | Path | bytes, name: str | None = None) -> PabulibElection:
    """A ``.pb`` file as rule inputs. Costs become integer minor units: when any cost or the budget
    has decimals, everything is scaled by a power of ten and ``Budget.unit_minor`` says by how much
    (whole-unit files use unit_minor = 1)."""
    pb = parse(source, name)
    costs = {r.fields["project_id"]: parse_decimal(r.fields["cost"]) for r in pb.projects}
    budget_units = parse_decimal(pb.meta["budget"])
    unit_minor = _decimal_scale([budget_units, *costs.values()])
    proposals = [
        Proposal(id=sys.intern(row.fields["project_id"]), cost_minor=int(costs[row.fields["project_id"]] * unit_minor),
                 title=row.fields.get("name", ""))
        for row in pb.projects
    ]
    selected = None
    if "selected" in pb.project_columns:
        selected = [r.fields["project_id"] for r in pb.projects if r.fields["selected"] == "1"]
    extra_columns = [c for c in pb.project_columns if c not in ("project_id", "cost", "votes", "score", "selected")]
    extra = {r.fields["project_id"]: {c: r.fields[c] for c in extra_columns} for r in pb.projects}
    return PabulibElection(
        name=pb.name,
        meta=dict(pb.meta),
        vote_type=pb.vote_type,
        proposals=proposals,
        ballots=_ballots(pb),
        budget=Budget(amount_minor=int(budget_units * unit_minor), currency=pb.meta.get("currency", "XXX"),
                      unit_minor=unit_minor),
        selected=selected,
        project_extra=extra,
    )


def _ballots(pb: PbFile) -> list[Ballot]:
    # identical approval sets share one frozenset (an election repeats a few sets thousands of times):
    # grouping identical ballots then compares by identity instead of set by set, and touches less memory
    shared: dict[frozenset[str], frozenset[str]] = {}
    return [_ballot(pb, row, shared) for row in pb.votes]


def _ballot(pb: PbFile, row: Row, shared: dict[frozenset[str], frozenset[str]]) -> Ballot:
    # interned, like the proposals' ids: thousands of ballots then share one string per project, so
    # grouping identical ballots and counting votes compare by identity instead of by characters
    ids = list(map(sys.intern, _split_list(row.fields["vote"])))
    voter = row.fields["voter_id"]
    if pb.vote_type in ("approval", "choose-1"):
        value = frozenset(ids)
        return Ballot(voter, shared.setdefault(value, value))
    if pb.vote_type == "ordinal":
        return Ballot(voter, tuple(ids))
    points = {pid: int(p) for pid, p in zip(ids, _split_list(row.fields["points"]))}
    if pb.vote_type == "scoring" and pb.meta.get("default_score"):
        default = int(pb.meta["default_score"])
        for project in pb.projects:
            points.setdefault(project.fields["project_id"], default)
    return Ballot(voter, points)


def fundcircle_rule_from_comment(meta: Mapping[str, str]) -> tuple[str, dict[str, Any]] | None:
    """The (rule id, params) a fundcircle export recorded in ``comment`` (``#1: fundcircle <id> <json>``)."""
    match = _FUNDCIRCLE_COMMENT.search(meta.get("comment", ""))
    if not match:
        return None
    try:
        params = json.loads(match.group(2))
    except json.JSONDecodeError:
        return None
    return (match.group(1), params) if isinstance(params, dict) else None


# --- export ----------------------------------------------------------------------------------


def pabulib_rule_word(rule_id: str, params: Mapping[str, Any]) -> str | None:
    """The exact pabulib ``rule`` word for a fundcircle rule and parameters, or None."""
    plain_tie = params.get("tie_order", "cost_asc,votes_desc,lottery")
    if rule_id == "approval-greedy":
        if params.get("order", "votes") != "votes" or params.get("max_ballot_cost") is not None:
            return None
        if params.get("skip", True) is False:
            return "greedy-no-skip" if not params.get("min_votes") else None
        return "greedy-threshold" if params.get("min_votes") else "greedy"
    if rule_id == "mes" and params.get("utility", "cost") == "cost" and params.get("topup", "none") == "none" \
            and params.get("support_factor") is None and plain_tie:
        completion = params.get("completion", "add1")
        comparison = params.get("comparison", "none")
        step = Fraction(str(params.get("step", 1)))
        if completion == "none" and comparison == "none":
            return "equalshares"
        if completion == "add1" and step == 1:
            return {"none": "equalshares/add1", "satisfaction": "equalshares/add1-comparison"}.get(comparison)
    return None


def _units_text(amount_minor: int, unit_minor: int) -> str:
    """Minor units as a decimal in major units ('12.5', '1000')."""
    value = Fraction(amount_minor, unit_minor)
    if value.denominator == 1:
        return str(value.numerator)
    digits = 0
    while (value * 10**digits).denominator != 1:
        digits += 1
        if digits > 12:
            raise ValueError(f"unit_minor {unit_minor} is not a power of ten")
    scaled = abs(value.numerator * 10**digits // value.denominator)
    sign = "-" if value < 0 else ""
    whole, frac_part = divmod(scaled, 10**digits)
    return f"{sign}{whole}.{frac_part:0{digits}d}"


def dumps(election: PabulibElection, *, rule_id: str | None = None, params: Mapping[str, Any] | None = None,
          selected: Iterable[str] | None = None) -> str:
    """The election as ``.pb`` text: sections in order, minimal quoting, fresh voter ids 1..n.

    ``rule_id``/``params`` set META ``rule`` (the pabulib word where one fits, else ``unknown`` plus
    a ``#1: fundcircle <id> <params JSON>`` comment); ``selected`` (closed rounds only) adds the column.
    """
    unit = election.budget.unit_minor
    meta = dict(election.meta)
    meta.update(num_projects=str(len(election.proposals)), num_votes=str(len(election.ballots)),
                budget=_units_text(election.budget.amount_minor, unit), vote_type=election.vote_type)
    if rule_id is not None:
        from fundcircle.voting.base import jsonable

        word = pabulib_rule_word(rule_id, params or {})
        meta["rule"] = word or "unknown"
        meta.pop("comment", None) if (election.meta.get("comment", "").startswith("#1: fundcircle")) else None
        if word is None:
            ours = f"#1: fundcircle {rule_id} {json.dumps(jsonable(dict(params or {})), sort_keys=True)}"
            old = re.sub(r"#(\d+):", lambda m: f"#{int(m.group(1)) + 1}:", meta.get("comment", ""))
            meta["comment"] = f"{ours} {old}".strip()
    meta.setdefault("rule", "unknown")
    if election.vote_type == "cumulative" and "max_sum_points" not in meta:
        meta["max_sum_points"] = str(max((sum(b.value.values()) for b in election.ballots), default=1))
    selected_set = set(selected) if selected is not None else None
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(["META"])
    writer.writerow(["key", "value"])
    for key, value in meta.items():
        writer.writerow([key, value])
    _write_projects(writer, election, selected_set)
    _write_votes(writer, election)
    return out.getvalue()


def _write_projects(writer: Any, election: PabulibElection, selected: set[str] | None) -> None:
    votes, score = _project_counts(election)
    extra_columns = sorted({c for cols in election.project_extra.values() for c in cols} - {"name"})
    columns = ["project_id", "cost", "votes"] + (["score"] if score is not None else []) + ["name"]
    columns += extra_columns + (["selected"] if selected is not None else [])
    writer.writerow(["PROJECTS"])
    writer.writerow(columns)
    for p in election.proposals:
        extra = election.project_extra.get(p.id, {})
        row = [p.id, _units_text(p.cost_minor, election.budget.unit_minor), str(votes[p.id])]
        if score is not None:
            row.append(str(score[p.id]))
        row.append(p.title or extra.get("name", ""))
        row += [extra.get(c, "") for c in extra_columns]
        if selected is not None:
            row.append("1" if p.id in selected else "0")
        writer.writerow(row)


def _project_counts(election: PabulibElection) -> tuple[dict[str, int], dict[str, int] | None]:
    votes = {p.id: 0 for p in election.proposals}
    score = {p.id: 0 for p in election.proposals} if election.vote_type != "approval" and \
        election.vote_type != "choose-1" else None
    for ballot in election.ballots:
        value = ballot.value
        ids = list(value) if not isinstance(value, tuple) else value
        for position, pid in enumerate(ids):
            votes[pid] += 1
            if score is not None:
                score[pid] += value[pid] if isinstance(value, dict) else len(ids) - position
    return votes, score


def _write_votes(writer: Any, election: PabulibElection) -> None:
    points = election.vote_type in POINTS_VOTE_TYPES
    writer.writerow(["VOTES"])
    writer.writerow(["voter_id", "vote"] + (["points"] if points else []))
    order = {p.id: i for i, p in enumerate(election.proposals)}
    for index, ballot in enumerate(election.ballots, start=1):
        value = ballot.value
        if isinstance(value, tuple):
            ids = list(value)
        elif isinstance(value, dict):
            ids = sorted(value, key=lambda pid: (-value[pid], order[pid]))  # conventional: decreasing points
        else:
            ids = sorted(value, key=order.__getitem__)
        row = [str(index), ",".join(ids)]
        if points:
            row.append(",".join(str(value[pid]) for pid in ids))
        writer.writerow(row)


def write(election: PabulibElection, path: str | Path, **kwargs: Any) -> None:
    """Write :func:`dumps` output to ``path`` (UTF-8, LF line ends)."""
    Path(path).write_text(dumps(election, **kwargs), encoding="utf-8", newline="")
