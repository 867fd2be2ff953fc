"""``fundcircle ledger verify`` and ``fundcircle ledger balance`` (registered in fundcircle/cli.py).

They read the database named by ``DATABASE_URL`` (default: the SQLite file under ``instance/``)
through a plain engine and session, so they work without the web app and never write.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
import sqlalchemy as sa


def _session_factory():  # type: ignore[no-untyped-def]
    import fundcircle.models  # noqa: F401  (every mapper registered before the first query)
    from fundcircle.config import load_config
    from fundcircle.db import make_engine, make_sessionmaker

    # DATABASE_URL directly when set: load_config() would also create a development secret key
    url = os.environ.get("DATABASE_URL") or load_config()["DATABASE_URL"]
    engine = make_engine(url)
    return engine, make_sessionmaker(engine)


@click.group("ledger")
def ledger_group() -> None:
    """The append-only ledger: verify the chain, show balances."""


@ledger_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_command(as_json: bool) -> None:
    """Recompute the hash chain from seq 1 and re-check every invariant, and recompute every
    stored balance assertion.

    Exit status 0 when everything holds, 1 otherwise (the first bad seq is named). A balance
    assertion that did not match its outside statement is listed but does not fail the check:
    it is a finding to resolve, not damage.
    """
    from dataclasses import asdict

    from fundcircle.ledger.assertions import balance_assertions, recheck_balance_assertions
    from fundcircle.ledger.checks import verify

    engine, make_session = _session_factory()
    try:
        with make_session() as session:
            report = verify(session)
            assertion_problems = recheck_balance_assertions(session)  # table from migration 0009
            assertions = balance_assertions(session)
    finally:
        engine.dispose()
    mismatched = [a for a in assertions if not a.matched]
    ok = report.ok and not assertion_problems
    if as_json:
        out = report.to_dict()
        out["ok"] = ok
        out["balance_assertions"] = {
            "count": len(assertions), "problems": [asdict(p) for p in assertion_problems],
            "mismatched": [{"id": a.id, "account": a.account_key, "source": a.source, "reference": a.reference,
                            "as_of_seq": a.as_of_seq, "expected_minor": a.expected.amount_minor,
                            "ledger_minor": a.ledger.amount_minor, "currency": a.expected.currency}
                           for a in mismatched]}
        click.echo(json.dumps(out, indent=2))
    else:
        if report.ok:
            click.echo(f"ledger OK: {report.transactions} transactions, {report.postings} postings; "
                       f"head seq {report.head.seq} {report.head.hash_hex or '(empty)'}")
        else:
            click.echo(f"ledger BROKEN: first bad seq {report.first_bad_seq}", err=True)
            for problem in report.problems:
                click.echo(f"  seq {problem.seq}: [{problem.code}] {problem.message}", err=True)
        for problem in assertion_problems:
            click.echo(f"  seq {problem.seq}: [{problem.code}] {problem.message}", err=True)
        if assertions:
            click.echo(f"balance assertions: {len(assertions)} rechecked, "
                       f"{len(assertion_problems)} changed since recorded, {len(mismatched)} did not match "
                       f"their outside statement")
    sys.exit(0 if ok else 1)


@ledger_group.command("balance")
@click.option("--circle", "slug", default=None, help="Only this circle (its slug).")
@click.option("--json", "as_json", is_flag=True, help="Print balances as JSON.")
def balance_command(slug: str | None, as_json: bool) -> None:
    """Balances per circle: pot available, earmarked, paid out, fees, suspense, and every account."""
    from fundcircle.circles.models import Circle
    from fundcircle.ledger.checks import account_balances, circle_balances, head
    from fundcircle.ledger.money import format_money

    engine, make_session = _session_factory()
    out: list[dict[str, Any]] = []
    try:
        with make_session() as session:
            query = sa.select(Circle).order_by(Circle.slug)
            if slug is not None:
                query = query.where(Circle.slug == slug)
            circles = list(session.scalars(query))
            if slug is not None and not circles:
                raise click.ClickException(f"no circle with slug {slug!r}")
            for circle in circles:
                summary = circle_balances(session, circle.id, circle.currency).to_dict()
                accounts = [{"key": b.key, "kind": b.kind, "balance_minor": b.balance.amount_minor,
                             "currency": b.balance.currency} for b in account_balances(session, circle.id)]
                seq, hash_hex = head(session, circle.id)
                out.append({"slug": circle.slug, "name": circle.name, **summary, "accounts": accounts,
                            "head": {"seq": seq, "hash": hash_hex}})
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps({"circles": out}, indent=2))
        return
    for c in out:
        cur = c["currency"]
        click.echo(f"{c['name']} ({c['slug']}), head seq {c['head']['seq']}")
        for label, key in (("pot available", "pot_available_minor"), ("earmarked", "earmarked_minor"),
                           ("paid out", "paid_out_minor"), ("fees", "fees_minor"), ("suspense", "suspense_minor")):
            click.echo(f"  {label:<14}{format_money(c[key], cur):>20}")
        for a in c["accounts"]:
            click.echo(f"    {a['key']:<40}{format_money(a['balance_minor'], a['currency']):>20}")
