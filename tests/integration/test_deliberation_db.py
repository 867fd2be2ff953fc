"""Deliberation in the database: the guards the migration adds (never deleted, never edited,
hidden once; replies stay in their proposal; one answer per question), double submissions
racing each other, and the demo's discussions."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from fundcircle.db import begin_write, make_engine
from tests.support import factories as f
from tests.support.factories import DAY, T0

NOW = T0 + 2 * DAY
BASE = "http://fundcircle.test"


@pytest.fixture
def seeded(app):  # type: ignore[no-untyped-def]
    """Two proposals; on the first a question, a comment and a reply; on the second a comment."""
    from fundcircle.circles import operations as circle_ops
    from fundcircle.deliberation import operations as ops
    from fundcircle.extensions import db

    with app.app_context():
        s = db.session
        circle = f.create_circle(s)
        round_ = f.create_round(s, circle)
        member = f.create_user(s, "mina@example.org")
        circle_ops.add_member(s, circle=circle, user=member, now=T0 - DAY)
        applicant = f.create_user(s, "rosa@example.org")
        p1 = f.create_proposal(s, round_, applicant)
        p2 = f.create_proposal(s, round_, f.create_user(s, "kwame@example.org"), title="Football")
        question = ops.post_comment(s, proposal=p1, author=member, body="How?", kind="question", now=NOW,
                                    base_url=BASE).comment
        comment = ops.post_comment(s, proposal=p1, author=member, body="Nice.", now=NOW, base_url=BASE).comment
        reply = ops.post_comment(s, proposal=p1, author=applicant, body="Thanks!", parent_id=comment.id, now=NOW,
                                 base_url=BASE).comment
        elsewhere = ops.post_comment(s, proposal=p2, author=member, body="Hm.", now=NOW, base_url=BASE).comment
        s.commit()
        return {"p1": p1.id, "p2": p2.id, "question": question.id, "comment": comment.id, "reply": reply.id,
                "elsewhere": elsewhere.id, "member": member.id, "applicant": applicant.id, "round": round_.id}


def _run(app, sql: str, **params) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(app.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def test_guard_triggers_exist(app, backend: str) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(app.config["DATABASE_URL"])
    with engine.connect() as conn:
        if backend == "postgresql":
            names = {r[0] for r in conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
            expected = {"comments_no_change", "comments_no_truncate", "comments_parent_check"}
        else:
            names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            expected = {"comments_no_delete", "comments_no_update", "comments_parent_check"}
    engine.dispose()
    assert expected <= names


@pytest.mark.parametrize("sql", [
    "UPDATE comments SET body = 'rewritten' WHERE id = :id",
    "UPDATE comments SET author_id = author_id + 0, kind = 'question' WHERE id = :id",
    "UPDATE comments SET parent_id = NULL WHERE id = :id",
    "DELETE FROM comments WHERE id = :id",
])
def test_comments_are_never_edited_or_deleted(app, seeded: dict, sql: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        _run(app, sql, id=seeded["reply"])


def test_hiding_happens_once_and_never_changes_the_text(app, seeded: dict) -> None:  # type: ignore[no-untyped-def]
    hide = ("UPDATE comments SET hidden_at = :at, hidden_by_id = :by, hidden_reason = :why WHERE id = :id")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):  # hiding and editing together
        _run(app, hide.replace("SET", "SET body = 'x',"), at=NOW, by=seeded["member"], why="r", id=seeded["reply"])
    with pytest.raises(sa.exc.IntegrityError):  # a hide needs a reason (CHECK)
        _run(app, hide, at=NOW, by=seeded["member"], why="", id=seeded["reply"])
    _run(app, hide, at=NOW, by=seeded["member"], why="off topic", id=seeded["reply"])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):  # no second hide, no new reason
        _run(app, hide, at=NOW, by=seeded["member"], why="another reason", id=seeded["reply"])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):  # never un-hidden
        _run(app, "UPDATE comments SET hidden_at = NULL, hidden_by_id = NULL, hidden_reason = '' WHERE id = :id",
             id=seeded["reply"])


INSERT = ("INSERT INTO comments (proposal_id, parent_id, author_id, kind, body, created_at, hidden_reason) "
          "VALUES (:p, :parent, :author, :kind, :body, :at, '')")


def test_a_reply_stays_in_its_parents_proposal(app, seeded: dict) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(sa.exc.DatabaseError, match="same proposal"):
        _run(app, INSERT, p=seeded["p1"], parent=seeded["elsewhere"], author=seeded["member"], kind="comment",
             body="x", at=NOW)


def test_an_answer_replies_to_a_question_and_only_once(app, seeded: dict) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(sa.exc.DatabaseError, match="answer must reply to a question"):
        _run(app, INSERT, p=seeded["p1"], parent=seeded["comment"], author=seeded["applicant"], kind="answer",
             body="x", at=NOW)
    with pytest.raises(sa.exc.IntegrityError):
        _run(app, INSERT, p=seeded["p1"], parent=None, author=seeded["applicant"], kind="answer", body="x", at=NOW)
    _run(app, INSERT, p=seeded["p1"], parent=seeded["question"], author=seeded["applicant"], kind="answer",
         body="first", at=NOW)
    with pytest.raises(sa.exc.IntegrityError):
        _run(app, INSERT, p=seeded["p1"], parent=seeded["question"], author=seeded["applicant"], kind="answer",
             body="second", at=NOW)


def test_a_hidden_answer_frees_the_place_for_a_new_one(app, seeded: dict) -> None:  # type: ignore[no-untyped-def]
    _run(app, INSERT, p=seeded["p1"], parent=seeded["question"], author=seeded["applicant"], kind="answer",
         body="first", at=NOW)
    _run(app, "UPDATE comments SET hidden_at = :at, hidden_by_id = :by, hidden_reason = 'private' "
              "WHERE kind = 'answer'", at=NOW, by=seeded["member"])
    _run(app, INSERT, p=seeded["p1"], parent=seeded["question"], author=seeded["applicant"], kind="answer",
         body="second", at=NOW)
    with pytest.raises(sa.exc.IntegrityError):
        _run(app, INSERT, p=seeded["p1"], parent=seeded["question"], author=seeded["applicant"], kind="answer",
             body="third", at=NOW)


@pytest.mark.parametrize("body", ["", "x" * 5001])
def test_body_length_is_checked_by_the_database(app, seeded: dict, body: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(sa.exc.IntegrityError):
        _run(app, INSERT, p=seeded["p1"], parent=None, author=seeded["member"], kind="comment", body=body, at=NOW)


def _race(app, work, copies: int = 6) -> list:  # type: ignore[no-untyped-def]
    """Run ``work(session)`` in ``copies`` threads at once, each in its own transaction."""
    from fundcircle.extensions import db

    barrier = threading.Barrier(copies)
    results: list = [None] * copies

    def run(i: int) -> None:
        with app.app_context():
            session = db.new_session()
            try:
                barrier.wait(timeout=30)
                begin_write(session)  # what a writing request does first
                results[i] = work(session)
                session.commit()
            except Exception as exc:  # noqa: BLE001 - collected and checked by the test
                session.rollback()
                results[i] = exc
            finally:
                session.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_copies_of_one_form_store_one_comment(app, seeded: dict) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.auth.models import User
    from fundcircle.deliberation import operations as ops
    from fundcircle.deliberation.models import Comment
    from fundcircle.notifications.models import OutgoingMail
    from fundcircle.proposals.models import Proposal

    def post(session):  # type: ignore[no-untyped-def]
        posted = ops.post_comment(session, proposal=session.get(Proposal, seeded["p1"]),
                                  author=session.get(User, seeded["member"]), body="Same form", now=NOW,
                                  base_url=BASE, submission_key="k-123")
        return posted.comment.id, posted.is_replay

    results = _race(app, post)
    assert all(isinstance(r, tuple) for r in results), results
    assert len({cid for cid, _ in results}) == 1 and sum(not replay for _, replay in results) == 1
    from fundcircle.extensions import db

    with app.app_context():
        s = db.session
        assert s.scalar(sa.select(sa.func.count()).select_from(Comment).where(Comment.body == "Same form")) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(OutgoingMail)
                        .where(OutgoingMail.body_text.contains("Same form"))) == 1


def test_concurrent_answers_store_one(app, seeded: dict) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.auth.models import User
    from fundcircle.deliberation import operations as ops
    from fundcircle.deliberation.models import Comment
    from fundcircle.errors import RuleViolation

    def answer(session):  # type: ignore[no-untyped-def]
        return ops.answer_question(session, question=session.get(Comment, seeded["question"]),
                                   author=session.get(User, seeded["applicant"]), body="An answer", now=NOW,
                                   base_url=BASE).comment.id

    results = _race(app, answer, copies=4)
    assert sum(isinstance(r, int) for r in results) == 1, results
    assert all(isinstance(r, RuleViolation) for r in results if not isinstance(r, int)), results


def test_demo_discussions(app) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.audit.models import AuditEvent
    from fundcircle.db import utcnow
    from fundcircle.deliberation import queries
    from fundcircle.deliberation.models import Comment
    from fundcircle.demo import seed_demo
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal
    from fundcircle.voting.models import ConflictOfInterest

    with app.app_context():
        s = db.session
        now = utcnow()
        seed_demo(s, now)
        s.commit()
        rows = list(s.scalars(sa.select(Comment)))
        assert len(rows) >= 12 and all(c.created_at < now for c in rows)
        [hidden] = [c for c in rows if c.is_hidden]
        assert hidden.hidden_reason and hidden.hidden_by_id is not None
        assert s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "comment.hide",
                                                    AuditEvent.object_id == hidden.id)) is not None
        proposals = {p.title: p for p in s.scalars(sa.select(Proposal))}
        laptops = queries.thread(s, proposals["Homework club laptops"])
        assert laptops.unanswered_count == 1
        warm = queries.thread(s, proposals["Warm Wednesdays at the community hall"])
        assert warm.question_count == 1 and warm.unanswered_count == 0
        depth = max(n.depth for n in _walk(warm.roots))
        assert depth >= 3  # a reply chain
        declared = list(s.scalars(sa.select(ConflictOfInterest).where(ConflictOfInterest.is_automatic.is_(False))))
        assert {c.level for c in declared} == {"disclose", "recuse"}


def _walk(nodes):  # type: ignore[no-untyped-def]
    for n in nodes:
        yield n
        if n.answer:
            yield from _walk([n.answer])
        yield from _walk(n.replies)
