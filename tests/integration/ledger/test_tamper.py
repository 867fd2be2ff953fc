"""Tampering with sealed rows (triggers dropped first, in this test's throwaway database) is found by
verify() and `fundcircle ledger verify`, which name the first bad seq."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from fundcircle.cli import main
from fundcircle.ledger import award, cancel_award, record_contribution, record_payout, verify
from fundcircle.ledger.models import LEDGER_TABLES
from tests.integration.ledger.helpers import NOW, World


def _ledger(session: Session, world: World) -> None:
    """Six sealed transactions: seq 1-2 contributions, 3-4 awards, 5 payout, 6 a cancelled award."""
    record_contribution(session, world.circle, gross_minor=300_00, fee_minor=4_75, payment_intent_id="pi_a", now=NOW)
    record_contribution(session, world.circle, gross_minor=200_00, manual_reference="bank-1", now=NOW)
    award(session, world.round, world.proposals[0], 150_00, now=NOW)
    award(session, world.round, world.proposals[1], 100_00, now=NOW)
    record_payout(session, world.round, world.proposals[0], expense_id=9, amount_minor=150_00, now=NOW)
    cancel_award(session, world.round, world.proposals[1], now=NOW)
    session.commit()


def _drop_triggers(session: Session, backend: str) -> None:
    names = [(f"{t}_{op}", t) for t in LEDGER_TABLES for op in (
        ("no_change", "no_truncate") if backend == "postgresql" else ("no_update", "no_delete"))]
    names += [("ledger_posting_check", "ledger_posting"), ("ledger_seal_check", "ledger_seal")]
    for name, table in names:
        session.execute(sa.text(f"DROP TRIGGER {name} ON {table}" if backend == "postgresql" else f"DROP TRIGGER {name}"))
    session.commit()


def _cli_verify(database_url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["ledger", "verify", "--json"], env={"DATABASE_URL": database_url})
    return result.exit_code, json.loads(result.stdout)


TAMPERING = {
    # name -> (SQL, the seq that must be reported first)
    "amount": ("UPDATE ledger_posting SET amount_minor = amount_minor + 100 WHERE id = (SELECT min(p.id) FROM "
               "ledger_posting p JOIN ledger_seal s ON s.transaction_id = p.transaction_id WHERE s.seq = 3)", 3),
    "balance_after": ("UPDATE ledger_posting SET balance_after_minor = 0 WHERE id = (SELECT min(p.id) FROM "
                      "ledger_posting p JOIN ledger_seal s ON s.transaction_id = p.transaction_id WHERE s.seq = 2)", 2),
    "middle_seal_deleted": ("DELETE FROM ledger_seal WHERE seq = 3", 3),
    "hash": ("UPDATE ledger_seal SET hash = (SELECT hash FROM ledger_seal WHERE seq = 1) WHERE seq = 4", 4),
    "key": ("UPDATE ledger_transaction SET idempotency_key = 'award:1:99' WHERE id = "
            "(SELECT transaction_id FROM ledger_seal WHERE seq = 4)", 4),
    "effective_on": ("UPDATE ledger_transaction SET effective_on = '2020-01-01' WHERE id = "
                     "(SELECT transaction_id FROM ledger_seal WHERE seq = 5)", 5),
    "posting_moved": ("UPDATE ledger_posting SET transaction_id = (SELECT transaction_id FROM ledger_seal WHERE seq = 1) "
                      "WHERE id = (SELECT max(p.id) FROM ledger_posting p JOIN ledger_seal s "
                      "ON s.transaction_id = p.transaction_id WHERE s.seq = 6)", 1),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_verify_names_the_first_bad_seq(db_session: Session, world: World, backend: str, database_url: str,
                                        case: str) -> None:
    _ledger(db_session, world)
    assert verify(db_session).ok
    code, clean = _cli_verify(database_url)
    assert code == 0 and clean["ok"] and clean["head"]["seq"] == 6
    _drop_triggers(db_session, backend)
    sql, first_bad = TAMPERING[case]
    db_session.execute(sa.text(sql))
    db_session.commit()
    report = verify(db_session)
    assert not report.ok
    assert report.first_bad_seq == first_bad, report.problems
    code, out = _cli_verify(database_url)
    assert code == 1
    assert out["first_bad_seq"] == first_bad and not out["ok"]


def test_cli_human_output_and_balance(db_session: Session, world: World, database_url: str) -> None:
    _ledger(db_session, world)
    runner = CliRunner()
    ok = runner.invoke(main, ["ledger", "verify"], env={"DATABASE_URL": database_url})
    assert ok.exit_code == 0 and "ledger OK: 6 transactions" in ok.stdout
    bal = runner.invoke(main, ["ledger", "balance", "--circle", "riverside", "--json"], env={"DATABASE_URL": database_url})
    assert bal.exit_code == 0, bal.output
    circle = json.loads(bal.stdout)["circles"][0]
    assert (circle["pot_available_minor"], circle["earmarked_minor"], circle["paid_out_minor"],
            circle["fees_minor"]) == (350_00, 0, 150_00, 4_75)
    human = runner.invoke(main, ["ledger", "balance"], env={"DATABASE_URL": database_url})
    assert "pot available" in human.stdout and "350.00 EUR" in human.stdout
    missing = runner.invoke(main, ["ledger", "balance", "--circle", "nope"], env={"DATABASE_URL": database_url})
    assert missing.exit_code != 0


def _rewrite_chain(session: Session) -> None:
    """What an insider who can recompute everything would do after editing rows: running balances
    and every seal hash recomputed with the reference encoder, so only the invariants can tell."""
    from fundcircle.ledger.chain import canonical_bytes, chain_hash

    running: dict[int, int] = {}
    for pid, account_id, amount in session.execute(sa.text(
            "SELECT id, account_id, amount_minor FROM ledger_posting ORDER BY id")).all():
        running[account_id] = running.get(account_id, 0) + amount
        session.execute(sa.text("UPDATE ledger_posting SET balance_after_minor = :b WHERE id = :i"),
                        {"b": running[account_id], "i": pid})
    seq_of = dict(session.execute(sa.text("SELECT transaction_id, seq FROM ledger_seal")).all())
    prev = None
    for seq, tx_id in session.execute(sa.text("SELECT seq, transaction_id FROM ledger_seal ORDER BY seq")).all():
        key, kind, eff, reverses_id = session.execute(sa.text(
            "SELECT idempotency_key, kind, effective_on, reverses_id FROM ledger_transaction WHERE id = :t"),
            {"t": tx_id}).one()
        postings = [tuple(r) for r in session.execute(sa.text(
            "SELECT a.key, p.currency, p.amount_minor FROM ledger_posting p JOIN ledger_account a "
            "ON a.id = p.account_id WHERE p.transaction_id = :t"), {"t": tx_id}).all()]
        day = eff if not isinstance(eff, str) else __import__("datetime").date.fromisoformat(eff)
        digest = chain_hash(prev, canonical_bytes(seq=seq, key=key, kind=kind, effective_on=day,
                                                  reverses=None if reverses_id is None else seq_of[reverses_id],
                                                  postings=postings))
        session.execute(sa.text("UPDATE ledger_seal SET hash = :h, prev_hash = :p WHERE seq = :s"),
                        {"h": digest, "p": prev, "s": seq})
        prev = digest
    session.commit()


REWRITES = {
    # name -> (SQL before the rewrite, expected problem code, its seq)
    "award_beyond_the_pot": ("UPDATE ledger_posting SET amount_minor = amount_minor * 10 WHERE transaction_id = "
                             "(SELECT transaction_id FROM ledger_seal WHERE seq = 3)", "floor", 3),
    "unbalanced_fee": ("UPDATE ledger_posting SET amount_minor = amount_minor + 1 WHERE id = (SELECT max(p.id) FROM "
                       "ledger_posting p JOIN ledger_seal s ON s.transaction_id = p.transaction_id WHERE s.seq = 1)",
                       "unbalanced", 1),
    "currency": ("UPDATE ledger_posting SET currency = 'USD' WHERE id = (SELECT min(p.id) FROM ledger_posting p "
                 "JOIN ledger_seal s ON s.transaction_id = p.transaction_id WHERE s.seq = 2)", "currency", 2),
    "cancel_not_negating": ("UPDATE ledger_posting SET amount_minor = amount_minor * 2 WHERE transaction_id = "
                            "(SELECT transaction_id FROM ledger_seal WHERE seq = 6)", "reversal_mismatch", 6),
}


@pytest.mark.parametrize("case", sorted(REWRITES))
def test_a_consistently_rewritten_chain_still_breaks_an_invariant(db_session: Session, world: World, backend: str,
                                                                  case: str) -> None:
    """Hashes recomputed after the edit: the chain itself is intact, so verify must find the broken
    money invariant at its seq (the fast path must hand such transactions to the full check)."""
    _ledger(db_session, world)
    _drop_triggers(db_session, backend)
    if backend == "postgresql":
        db_session.execute(sa.text("ALTER TABLE ledger_posting DROP CONSTRAINT fk_ledger_posting_currency_currency"))
    sql, code, seq = REWRITES[case]
    db_session.execute(sa.text(sql))
    _rewrite_chain(db_session)
    report = verify(db_session)
    assert [p.code for p in report.problems if p.code == code] and report.first_bad_seq == seq, report.problems
    assert not [p for p in report.problems if p.code in ("hash", "broken_link")], report.problems
