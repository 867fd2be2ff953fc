"""Conflicts of interest, the member-facing part: declaring over HTTP, what the member and the
public see, automatic recusal of an applicant who is a member, and that a recused member's
ballot naming the proposal is refused by the voting operation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from tests.support import factories as f
from tests.support.factories import DAY, T0
from tests.support.web import WebClient

MEMBER = "mina@example.org"
MEMBER_APPLICANT = "ada@example.org"
OUTSIDER = "olga@example.org"
OPEN = T0 + 2 * DAY
VOTING = T0 + 21 * DAY


@pytest.fixture
def coi(app):  # type: ignore[no-untyped-def]
    """A circle with a member, a member who applies (submitted through the operation), and a
    non-member's proposal; call open [T0, T0+10d), voting [T0+20d, T0+27d), approval voting."""
    from fundcircle.circles import operations as circle_ops
    from fundcircle.extensions import db

    with app.app_context():
        s = db.session
        circle = f.create_circle(s)
        round_ = f.create_round(s, circle)
        for email in (MEMBER, MEMBER_APPLICANT):
            circle_ops.add_member(s, circle=circle, user=f.create_user(s, email), now=T0 - DAY)
        f.create_user(s, OUTSIDER)
        theirs = f.create_proposal(s, round_, f.create_user(s, "rosa@example.org"))
        own = f.create_proposal(s, round_, f.create_user(s, MEMBER_APPLICANT), title="Ada's bee hotel",
                                payee_oc_slug="bee-hotel")
        s.commit()
        base = f"/c/{circle.slug}/r/{round_.id}"
        return {"round_id": round_.id, "theirs": theirs.id, "own": own.id, "base": base,
                "page": f"{base}/p/{theirs.id}", "own_page": f"{base}/p/{own.id}"}


def signed_in(app, email: str) -> WebClient:  # type: ignore[no-untyped-def]
    client = WebClient(app)
    client.sign_in(email)
    return client


def conflicts(app) -> list[tuple]:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db
    from fundcircle.voting.models import ConflictOfInterest as C

    with app.app_context():
        return [tuple(r) for r in db.session.execute(
            sa.select(C.user_id, C.proposal_id, C.level, C.reason_category, C.reason, C.is_automatic)
            .order_by(C.id))]


def cast(app, email: str, round_id: int, proposal_ids: set[int], now):  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db
    from fundcircle.rounds.models import Round
    from fundcircle.voting import operations as voting_ops

    with app.app_context():
        s = db.session
        voter = f.create_user(s, email)
        receipt = voting_ops.cast_ballot(s, s.get(Round, round_id), voter, proposal_ids, now)
        s.commit()
        return receipt


def test_member_declares_a_recusal_and_cannot_vote_on_the_proposal(app, coi: dict) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.audit.models import AuditEvent
    from fundcircle.extensions import db
    from fundcircle.voting.operations import Recused

    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        page = mina.text(coi["page"])
        assert "Declare a conflict of interest" in page and "No member has declared" in page
        response = mina.post(f"{coi['page']}/conflict", {"level": "recuse", "category": "family",
                                                        "reason": "Rosa is my sister-in-law."},
                             form_page=coi["page"])
        assert response.status_code == 302 and response.headers["Location"].endswith("#conflicts")
        page = mina.text(coi["page"])
        assert "You declared a conflict" in page and "recused" in page and "Rosa is my sister-in-law." in page
        public = WebClient(app).text(coi["page"])
        assert "1 member has declared a conflict of interest with this proposal (1 recused" in public
        assert "sister-in-law" not in public and "Mina" not in public  # no names, no words
        mine = mina.text(f"{coi['base']}/my-conflicts")
        assert "Community fridge" in mine and "family" in mine and "recused" in mine
    [row] = [c for c in conflicts(app) if not c[5]]
    assert row[1:] == (coi["theirs"], "recuse", "family", "Rosa is my sister-in-law.", False)
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "conflict.declare"))
        assert event.details == {"proposal_id": coi["theirs"], "level": "recuse", "category": "family"}
    with freeze_time(VOTING):
        with pytest.raises(Recused):
            cast(app, MEMBER, coi["round_id"], {coi["theirs"]}, VOTING)
        cast(app, MEMBER, coi["round_id"], {coi["own"]}, VOTING)  # the rest of the ballot is fine


def test_disclosure_is_published_and_the_member_still_votes(app, coi: dict) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        assert mina.post(f"{coi['page']}/conflict", {"level": "disclose", "category": "organisation", "reason": ""},
                         form_page=coi["page"]).status_code == 302
        assert "disclosed" in mina.text(coi["page"])
        public = WebClient(app).text(coi["page"])
        assert "1 member has declared a conflict of interest with this proposal." in public
        # A discloser's comments carry the note, so readers weigh them knowingly.
        mina.post(f"{coi['page']}/comments", {"body": "I know this group well.", "kind": "comment"},
                  form_page=coi["page"])
        assert ">declared a conflict<" in WebClient(app).text(coi["page"])
    with freeze_time(VOTING):
        receipt = cast(app, MEMBER, coi["round_id"], {coi["theirs"]}, VOTING)
        assert receipt.ballot_id > 0


@pytest.mark.parametrize("data, message", [
    ({"level": "recuse", "category": ""}, "Choose what kind of conflict it is."),
    ({"level": "", "category": "family"}, "Choose disclose or recuse."),
    ({"level": "recuse", "category": "applicant"}, "Not a valid choice"),
    ({"level": "maybe", "category": "family"}, "Not a valid choice"),
    ({"level": "recuse", "category": "other", "reason": "  "}, "Say in a few words what the conflict is."),
    ({"level": "recuse", "category": "family", "reason": "x" * 1001}, "Keep it under 1,000 characters."),
    ({"level": "recuse", "category": "family", "reason": "tab\x1bescape"}, "Remove the control characters"),
])
def test_invalid_declarations_write_nothing(app, coi: dict, data: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    before = conflicts(app)
    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        response = mina.post(f"{coi['page']}/conflict", data, form_page=coi["page"])
        assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert conflicts(app) == before


def test_only_members_declare_and_only_while_the_round_is_open(app, coi: dict) -> None:  # type: ignore[no-untyped-def]
    data = {"level": "recuse", "category": "financial", "reason": ""}
    with freeze_time(OPEN):
        outsider = signed_in(app, OUTSIDER)
        assert "Declare a conflict" not in outsider.text(coi["page"])
        assert outsider.post(f"{coi['page']}/conflict", data, form_page=coi["page"]).status_code == 403
        assert outsider.get(f"{coi['base']}/my-conflicts").status_code == 403
    with freeze_time(T0 + 28 * DAY):
        mina = signed_in(app, MEMBER)
        assert "Declare a conflict" not in mina.text(coi["page"])
        late = mina.post(f"{coi['page']}/conflict", data, form_page=coi["page"])
        assert late.status_code == 409 and "Voting has closed" in late.get_data(as_text=True)
    assert [c for c in conflicts(app) if not c[5]] == []


def test_an_applicant_who_is_a_member_is_recused_on_submit(app, coi: dict) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.voting.operations import Recused

    ada_id = next(c[0] for c in conflicts(app))
    assert conflicts(app) == [(ada_id, coi["own"], "recuse", "applicant", "", True)]
    with freeze_time(OPEN):
        ada = signed_in(app, MEMBER_APPLICANT)
        page = ada.text(coi["own_page"])
        assert "You are recused from this proposal automatically" in page and "applied for it" in page
        assert "Declare a conflict of interest" not in page  # nothing to declare: recused already
        public = WebClient(app).text(coi["own_page"])
        assert "1 member is recused automatically as applicant or payee." in public
        assert "you applied" in ada.text(f"{coi['base']}/my-conflicts")
        # Lowering the automatic recusal is refused.
        lowered = ada.post(f"{coi['own_page']}/conflict", {"level": "disclose", "category": "other",
                                                           "reason": "I'd like to vote"},
                           form_page=coi["own_page"])
        assert lowered.status_code == 409 and "cannot be lowered" in lowered.get_data(as_text=True)
    with freeze_time(VOTING):
        with pytest.raises(Recused):
            cast(app, MEMBER_APPLICANT, coi["round_id"], {coi["own"]}, VOTING)
    assert conflicts(app) == [(ada_id, coi["own"], "recuse", "applicant", "", True)]


def test_a_member_payee_is_recused_on_submit(app, coi: dict) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db
    from fundcircle.rounds.models import Round

    with app.app_context():
        s = db.session
        p = f.create_proposal(s, s.get(Round, coi["round_id"]), f.create_user(s, "kwame@example.org"),
                              payee_kind="email", payee_email=MEMBER.upper(), payee_oc_slug="")
        s.commit()
        mina_id, pid = f.create_user(s, MEMBER).id, p.id
    assert (mina_id, pid, "recuse", "payee", "", True) in conflicts(app)


def test_facilitators_see_who_declared_what(app, coi: dict) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        mina.post(f"{coi['page']}/conflict", {"level": "disclose", "category": "financial",
                                             "reason": "I sell fridges."}, form_page=coi["page"])
        assert mina.get(f"{coi['base']}/conflicts").status_code == 403
        fac = signed_in(app, "fac@example.org")
        assert "All conflicts in this round (facilitators)" in fac.text(coi["page"])
        assert "/account/second-factor" in fac.get(f"{coi['base']}/conflicts").location
        fac.pass_second_factor()
        page = fac.text(f"{coi['base']}/conflicts")
        assert "Mina" in page and "I sell fridges." in page and "financial" in page
        assert "Ada" in page and "automatic: applicant" in page
