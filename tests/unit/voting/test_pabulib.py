"""The pabulib reader rejects every malformed file of voting-rules.md §1.5 with a message that names
the file, section and line; the writer round-trips."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import pabulib
from fundcircle.voting.base import Ballot
from fundcircle.voting.pabulib import PabulibError

BASE = '''META
key;value
description;test
country;Nowhere
unit;Town
instance;2024
num_projects;3
num_votes;3
budget;100
vote_type;approval
rule;greedy
date_begin;01.01.2024
date_end;2024
PROJECTS
project_id;cost;votes;name;selected
a;50;2;"Park; with ""quotes""";1
b;40;2;Bench;1
c;70;1;Pool;0
VOTES
voter_id;vote
v1;a,b
v2;a
v3;b,c
'''

CUMULATIVE = """META
key;value
description;test
country;Nowhere
unit;Town
instance;2024
num_projects;2
num_votes;2
budget;100
vote_type;cumulative
rule;greedy
date_begin;2024
date_end;2024
max_sum_points;5
max_points;3
PROJECTS
project_id;cost;votes;score
a;50;2;5
b;40;2;3
VOTES
voter_id;vote;points
v1;a,b;3,2
v2;b,a;1,2
"""


def line_of(text: str, row: str) -> int:
    """1-based line number of the first line that starts with ``row``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(row):
            return number
    raise AssertionError(f"{row!r} not in the test file")


def expect_error(text: str | bytes, section: str | None, line: int, fragment: str) -> PabulibError:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(PabulibError) as caught:
        pabulib.parse(data, name="broken.pb")
    err = caught.value
    message = str(err)
    assert isinstance(err, ValidationError)
    assert message.startswith("broken.pb")
    assert err.line == line, message
    assert f"line {line}" in message
    if section is not None:
        assert err.section == section, message
        assert f"section {section}" in message
    assert fragment in message
    return err


def test_base_file_is_valid() -> None:
    pb = pabulib.parse(BASE.encode(), name="ok.pb")
    assert [r.fields["project_id"] for r in pb.projects] == ["a", "b", "c"]
    assert pb.projects[0].fields["name"] == 'Park; with "quotes"'
    assert pabulib.parse(CUMULATIVE.encode(), name="ok.pb").vote_type == "cumulative"


# --- structure -------------------------------------------------------------------------------


def test_missing_section() -> None:
    text = BASE[: BASE.index("VOTES")]
    expect_error(text, "VOTES", line_of(text, "c;70") + 1, "section VOTES is missing")


def test_duplicated_section() -> None:
    text = BASE + "PROJECTS\nproject_id;cost\n"
    expect_error(text, "PROJECTS", line_of(BASE, "v3") + 1, "appears twice")


def test_misordered_sections() -> None:
    projects = BASE[BASE.index("PROJECTS"):BASE.index("VOTES")]
    votes = BASE[BASE.index("VOTES"):]
    text = BASE[: BASE.index("PROJECTS")] + votes + projects
    expect_error(text, "VOTES", line_of(text, "VOTES"), "where PROJECTS was expected")


def test_file_not_starting_with_meta() -> None:
    expect_error("key;value\n" + BASE, "META", 1, "must start with the title line META")


def test_unknown_section_title() -> None:
    text = BASE.replace("VOTES\n", "RESULTS\nVOTES\n")
    expect_error(text, "PROJECTS", line_of(text, "RESULTS"), "unknown section title 'RESULTS'")


def test_meta_header_must_be_key_value() -> None:
    expect_error(BASE.replace("key;value", "key;val"), "META", 2, "key;value")


def test_duplicate_meta_key() -> None:
    text = BASE.replace("unit;Town\n", "unit;Town\ncountry;Elsewhere\n")
    expect_error(text, "META", line_of(text, "country;Elsewhere"), "duplicate META key 'country'")


def test_unterminated_quote() -> None:
    text = BASE.replace('a;50;2;"Park; with ""quotes""";1', 'a;50;2;"Park; with;1')
    expect_error(text, None, line_of(text, "a;50"), "unterminated")


def test_more_fields_than_header() -> None:
    text = BASE.replace("b;40;2;Bench;1", "b;40;2;Bench;1;extra")
    expect_error(text, "PROJECTS", line_of(text, "b;40"), "6 fields but the header names 5 columns")


def test_required_column_absent() -> None:
    text = BASE.replace("project_id;cost;votes", "project_id;price;votes")
    err = expect_error(text, "PROJECTS", line_of(text, "project_id;price"), "required column is missing")
    assert err.column == "cost"


def test_required_value_empty() -> None:
    text = BASE.replace("b;40;2;Bench;1", ";40;2;Bench;1")
    err = expect_error(text, "PROJECTS", line_of(text, ";40"), "required value is empty")
    assert err.column == "project_id"


def test_points_column_required_for_cumulative() -> None:
    text = CUMULATIVE.replace("voter_id;vote;points", "voter_id;vote;pts")
    expect_error(text, "VOTES", line_of(text, "voter_id"), "'points'")


# --- META ------------------------------------------------------------------------------------


def test_missing_obligatory_key() -> None:
    text = BASE.replace("country;Nowhere\n", "")
    expect_error(text, "META", line_of(text, "date_end") + 1, "obligatory META key 'country'")


def test_unknown_vote_type() -> None:
    text = BASE.replace("vote_type;approval", "vote_type;approvals")
    expect_error(text, "META", line_of(text, "vote_type"), "unknown vote_type 'approvals'")


def test_cumulative_without_max_sum_points() -> None:
    text = CUMULATIVE.replace("max_sum_points;5\n", "")
    expect_error(text, "META", line_of(text, "vote_type"), "max_sum_points")


@pytest.mark.parametrize("budget", ["lots", "0", "-5", "1.2.3"])
def test_bad_budget(budget: str) -> None:
    text = BASE.replace("budget;100", f"budget;{budget}")
    expect_error(text, "META", line_of(text, "budget"), "budget must be a number")


@pytest.mark.parametrize("key,value", [("date_begin", "31.02.2024"), ("date_end", "2024-01-01"),
                                       ("date_begin", "1.1.2024")])
def test_bad_date(key: str, value: str) -> None:
    text = BASE.replace("date_begin;01.01.2024", f"date_begin;{value}") if key == "date_begin" else \
        BASE.replace("date_end;2024", f"date_end;{value}")
    expect_error(text, "META", line_of(text, key), key)


def test_num_projects_disagrees() -> None:
    text = BASE.replace("num_projects;3", "num_projects;4")
    expect_error(text, "META", line_of(text, "num_projects"), "PROJECTS has 3 rows")


def test_num_votes_disagrees() -> None:
    text = BASE.replace("num_votes;3", "num_votes;2")
    expect_error(text, "META", line_of(text, "num_votes"), "VOTES has 3 rows")


# --- projects --------------------------------------------------------------------------------


def test_duplicate_project_id() -> None:
    text = BASE.replace("c;70;1;Pool;0", "b;70;1;Pool;0")
    expect_error(text, "PROJECTS", line_of(text, "b;70"), "duplicate project_id 'b'")


@pytest.mark.parametrize("cost,problem", [("-70", "negative"), ("7o", "not a number")])
def test_bad_cost(cost: str, problem: str) -> None:
    text = BASE.replace("c;70;1;Pool;0", f"c;{cost};1;Pool;0")
    expect_error(text, "PROJECTS", line_of(text, "c;"), problem)


def test_selected_out_of_range() -> None:
    text = BASE.replace("c;70;1;Pool;0", "c;70;1;Pool;4")
    expect_error(text, "PROJECTS", line_of(text, "c;70"), "selected must be 0, 1, 2 or 3")


def test_votes_contradict_ballots() -> None:
    text = BASE.replace("c;70;1;Pool;0", "c;70;5;Pool;0")
    expect_error(text, "PROJECTS", line_of(text, "c;70"), "votes says 5 but 1 ballots")


def test_score_contradicts_ballots() -> None:
    text = CUMULATIVE.replace("b;40;2;3", "b;40;2;4")
    expect_error(text, "PROJECTS", line_of(text, "b;40"), "score says 4")


# --- ballots ---------------------------------------------------------------------------------


def test_duplicate_voter_id() -> None:
    text = BASE.replace("v3;b,c", "v1;b,c")
    expect_error(text, "VOTES", line_of(text, "v1;b,c"), "duplicate voter_id 'v1'")


def test_unknown_project_in_ballot() -> None:
    text = BASE.replace("v3;b,c", "v3;b,z")
    expect_error(text, "VOTES", line_of(text, "v3"), "unknown project id 'z'")


def test_project_twice_in_ballot() -> None:
    text = BASE.replace("v3;b,c", "v3;b,b")
    expect_error(text, "VOTES", line_of(text, "v3"), "appears twice")


def test_ballot_longer_than_max_length() -> None:
    text = BASE.replace("date_end;2024\n", "date_end;2024\nmax_length;1\n")
    expect_error(text, "VOTES", line_of(text, "v1"), "ballot length 2 is outside [1, 1]")


def test_empty_ballot_below_default_min_length() -> None:
    text = BASE.replace("v2;a", "v2;").replace("a;50;2;", "a;50;1;")
    expect_error(text, "VOTES", line_of(text, "v2"), "ballot length 0")


def test_choose_one_with_two_projects() -> None:
    text = BASE.replace("vote_type;approval", "vote_type;choose-1")
    expect_error(text, "VOTES", line_of(text, "v1"), "exactly one project")


def test_ballot_cost_over_max_sum_cost() -> None:
    text = BASE.replace("date_end;2024\n", "date_end;2024\nmax_sum_cost;80\n")
    expect_error(text, "VOTES", line_of(text, "v1"), "total cost 90 is outside")


def test_points_misaligned() -> None:
    text = CUMULATIVE.replace("v2;b,a;1,2", "v2;b,a;1")
    expect_error(text, "VOTES", line_of(text, "v2"), "1 points for 2 projects")


def test_points_not_integer() -> None:
    text = CUMULATIVE.replace("v2;b,a;1,2", "v2;b,a;1,2.5")
    expect_error(text, "VOTES", line_of(text, "v2"), "not an integer")


def test_points_above_max_points() -> None:
    text = CUMULATIVE.replace("v1;a,b;3,2", "v1;a,b;4,1")
    expect_error(text, "VOTES", line_of(text, "v1"), "above max_points 3")


def test_points_sum_above_max_sum_points() -> None:
    text = CUMULATIVE.replace("v2;b,a;1,2", "v2;b,a;3,3")
    expect_error(text, "VOTES", line_of(text, "v2"), "points sum 6 is outside")


def test_invalid_utf8() -> None:
    data = BASE.encode("utf-8").replace(b"Bench", b"B\xffnch")
    expect_error(data, None, line_of(BASE, "b;40"), "invalid UTF-8")


def test_missing_file_is_a_pabulib_error(tmp_path) -> None:
    with pytest.raises(PabulibError, match="nothere.pb: cannot read the file"):
        pabulib.parse(tmp_path / "nothere.pb")


# --- lexical tolerance -----------------------------------------------------------------------


def test_bom_crlf_blank_lines_and_column_order() -> None:
    text = BASE.replace("project_id;cost;votes;name;selected", "name;selected;votes;cost;project_id")
    for row in ('a;50;2;"Park; with ""quotes""";1', "b;40;2;Bench;1", "c;70;1;Pool;0"):
        pid, cost, votes, name, selected = next(__import__("csv").reader([row], delimiter=";"))
        quoted = '"' + name.replace('"', '""') + '"' if ";" in name or '"' in name else name
        text = text.replace(row, f"{quoted};{selected};{votes};{cost};{pid}")
    data = ("\ufeff" + text.replace("\n", "\r\n").replace("VOTES", "\r\nVOTES")).encode("utf-8")
    election = pabulib.load(data, name="crlf.pb")
    assert [p.id for p in election.proposals] == ["a", "b", "c"]
    assert election.proposals[0].title == 'Park; with "quotes"'
    assert election.meta["description"] == "test"
    assert election.selected == ["a", "b"]


def test_decimal_costs_with_comma_scale_to_minor_units() -> None:
    text = BASE.replace("budget;100", "budget;100,5").replace("a;50;", "a;50,25;")
    election = pabulib.load(text.encode(), name="dec.pb")
    assert election.budget.unit_minor == 100
    assert election.budget.amount_minor == 10050
    assert {p.id: p.cost_minor for p in election.proposals} == {"a": 5025, "b": 4000, "c": 7000}
    assert election.to_units(5025) == Fraction(201, 4)


def test_whole_unit_file_uses_unit_minor_one() -> None:
    election = pabulib.load(BASE.encode(), name="ok.pb")
    assert election.budget.unit_minor == 1 and election.budget.amount_minor == 100


def test_ballot_value_types_follow_vote_type() -> None:
    cumulative = pabulib.load(CUMULATIVE.encode(), name="c.pb")
    assert cumulative.ballots[1].value == {"b": 1, "a": 2}
    ordinal = pabulib.load(BASE.replace("vote_type;approval", "vote_type;ordinal").encode(), name="o.pb")
    assert ordinal.ballots[0].value == ("a", "b")
    approval = pabulib.load(BASE.encode(), name="a.pb")
    assert approval.ballots[2].value == frozenset({"b", "c"})


# --- writer ----------------------------------------------------------------------------------


def _ballot_values(election: pabulib.PabulibElection) -> Counter:
    def freeze(value):
        return tuple(sorted(value.items())) if isinstance(value, dict) else value
    return Counter(freeze(b.value) for b in election.ballots)


@pytest.mark.parametrize("text", [BASE, CUMULATIVE, BASE.replace("vote_type;approval", "vote_type;ordinal"),
                                  BASE.replace("budget;100", "budget;100,5").replace("a;50;", "a;50.25;")])
def test_round_trip(text: str) -> None:
    first = pabulib.load(text.encode(), name="in.pb")
    written = pabulib.dumps(first, selected=first.selected)
    second = pabulib.load(written.encode(), name="out.pb")
    assert second.vote_type == first.vote_type
    assert second.budget == first.budget
    assert second.proposals == first.proposals
    assert _ballot_values(second) == _ballot_values(first)
    assert second.selected == first.selected
    assert [b.voter_id for b in second.ballots] == [str(i) for i in range(1, len(first.ballots) + 1)]
    assert pabulib.dumps(second, selected=second.selected) == written  # a fixed point


def test_writer_quotes_minimally_and_orders_sections() -> None:
    written = pabulib.dumps(pabulib.load(BASE.encode(), name="in.pb"))
    lines = written.splitlines()
    assert [line for line in lines if line in pabulib.SECTIONS] == ["META", "PROJECTS", "VOTES"]
    assert 'a;50;2;"Park; with ""quotes"""' in written
    assert "b;40;2;Bench" in written and '"Bench"' not in written
    assert "selected" not in written  # only for closed rounds


def test_writer_rule_word_or_fundcircle_comment() -> None:
    election = pabulib.load(BASE.encode(), name="in.pb")
    greedy = pabulib.dumps(election, rule_id="approval-greedy", params={"order": "votes", "skip": True})
    assert "rule;greedy\n" in greedy
    add1 = pabulib.dumps(election, rule_id="mes", params={"completion": "add1", "comparison": "satisfaction",
                                                          "step": Fraction(1)})
    assert "rule;equalshares/add1-comparison\n" in add1
    phragmen = pabulib.dumps(election, rule_id="phragmen", params={"overflow": "skip"})
    assert "rule;unknown\n" in phragmen
    assert 'comment;#1: fundcircle phragmen {""overflow"": ""skip""}' in phragmen or \
        'comment;"#1: fundcircle phragmen {""overflow"": ""skip""}"' in phragmen
    back = pabulib.load(phragmen.encode(), name="back.pb")
    assert pabulib.fundcircle_rule_from_comment(back.meta) == ("phragmen", {"overflow": "skip"})


def test_written_ballots_get_fresh_ids() -> None:
    election = pabulib.load(BASE.encode(), name="in.pb")
    election.ballots = [Ballot("secret-" + b.voter_id, b.value) for b in election.ballots]
    assert "secret" not in pabulib.dumps(election)
