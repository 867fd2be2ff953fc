"""The ``fundcircle`` command line (contract in DESIGN.md). Commands stay thin: parse, call an
operation or a pure function, print. Each command that touches the database builds the app with
``create_app()`` and commits once at the end."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """fundcircle: participatory micro-grants for Fund Circles."""


# --- voting: rules, simulate (fundcircle/voting) -------------------------------------------------
from typing import Any  # noqa: E402  (kept in this section; see the section rules)

# Official procedures that a .pb file's META `rule` word alone does not pin down, keyed by
# (country, unit, instance). Świecie 2023 made a proposal eligible only if votes/n >= cost/(3·B)
# (voting-rules.md §3.5); its file records just "equalshares/add1". The threshold changes nothing
# there (Add1 never buys c22 anyway) but reproduces the city's procedure step by step.
KNOWN_PROCEDURES: dict[tuple[str, str, str], dict[str, str]] = {
    ("Poland", "Świecie", "2023"): {"support_factor": "3"},
}


def _voting_fail(message: str) -> None:
    """One clear line on stderr and exit code 2 (bad input), never a traceback."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(2)


def _rule_from_file(election: Any) -> tuple[str, dict[str, str], str]:
    """(rule id, params, why) reproducing how the file's election was run (voting-rules.md §3.6)."""
    from fundcircle.voting.pabulib import fundcircle_rule_from_comment

    meta, vote_type, word = election.meta, election.vote_type, election.rule_word.strip().lower()
    recorded = fundcircle_rule_from_comment(meta)
    if word == "unknown" and recorded is not None:
        rule_id, params = recorded
        return rule_id, {k: "" if v is None else str(v) for k, v in params.items()}, "recorded in META comment"
    if vote_type == "ordinal" and word in ("greedy", "unknown"):
        return "borda", {"scheme": "truncated"}, f"ordinal ballots, META rule {word!r}: truncated Borda"
    if word in ("greedy", "greedy-threshold", "greedy-no-skip"):
        if vote_type == "cumulative":
            params = {"total_points": meta["max_sum_points"]}
            if meta.get("max_points"):
                params["max_per_proposal"] = meta["max_points"]
            return "cumulative", params, f"cumulative ballots, META rule {word!r}"
        if vote_type == "scoring":
            params = {k2: meta[k1] for k1, k2 in (("min_points", "min_score"), ("max_points", "max_score"))
                      if meta.get(k1)}
            return "score", params, f"scoring ballots, META rule {word!r}"
        params = {"max_approvals": "1"} if vote_type == "choose-1" else {}
        if word == "greedy-no-skip":
            params["skip"] = "false"
        threshold = meta.get("min_project_score_threshold", "")
        if threshold:
            params["min_votes"] = threshold
        return "approval-greedy", params, f"META rule {word!r}"
    mes_words = {
        "equalshares": {"completion": "none"},
        "equalshares/add1": {},
        "equalshares/add1-comparison": {"comparison": "satisfaction"},
    }
    if word in mes_words and vote_type in ("approval", "choose-1"):
        params = dict(mes_words[word])
        known = KNOWN_PROCEDURES.get((meta.get("country", ""), meta.get("unit", ""), meta.get("instance", "")), {})
        params.update(known)
        why = f"META rule {word!r}" + (" plus the city's documented eligibility threshold" if known else "")
        return "mes", params, why
    _voting_fail(f"{election.name}: the file names the rule {election.rule_word!r} (vote_type {vote_type}), which "
                 f"fundcircle cannot reproduce; choose one with --rule (see `fundcircle rules`)")
    raise AssertionError("unreachable")


def _units_json(amount_minor: int | Any, unit_minor: int) -> int | str:
    """An amount in the file's units for JSON: an int when whole, else an exact decimal string."""
    from fractions import Fraction

    value = Fraction(amount_minor) / unit_minor
    return value.numerator if value.denominator == 1 else str(float(value)) if (
        Fraction(str(float(value))) == value) else str(value)


@main.command("rules")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def rules_command(as_json: bool) -> None:
    """List the installed voting rules (plugins included)."""
    import json

    from fundcircle.voting.registry import all_rules

    described = [rule.describe() for rule in all_rules()]
    if as_json:
        click.echo(json.dumps({"rules": described}, ensure_ascii=False, indent=2))
        return
    for rule in described:
        click.echo(f"{rule['id']}  ({rule['ballot_kind']} ballots) — {rule['name']}")
        click.echo(f"    {rule['description']}")
        for param in rule["params"]:
            choices = f" [{'|'.join(map(str, param['choices']))}]" if param["choices"] else ""
            click.echo(f"    --param {param['name']}={'' if param['default'] is None else param['default']}"
                       f"{choices}  {param['help']}")
        click.echo("")


@main.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--rule", "rule_id", default=None, help="rule id (default: the rule the file's META names)")
@click.option("--param", "raw_params", multiple=True, metavar="K=V", help="rule parameter (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def simulate_command(file: str, rule_id: str | None, raw_params: tuple[str, ...], as_json: bool) -> None:
    """Run a voting rule on a pabulib .pb file (default: the file's own rule, as the city ran it)."""
    import json

    from fundcircle.errors import FundcircleError
    from fundcircle.voting import pabulib
    from fundcircle.voting.base import BallotKind, jsonable
    from fundcircle.voting.registry import get_rule
    from fundcircle.voting.tiebreak import ballot_digest, make_seed

    overrides: dict[str, str] = {}
    for item in raw_params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _voting_fail(f"--param needs the form key=value (got {item!r})")
        overrides[key.strip()] = value.strip()
    try:
        election = pabulib.load(file)
        if rule_id is None:
            rule_id, params, why = _rule_from_file(election)
        else:
            params, why = {}, "chosen with --rule"
        params.update(overrides)
        rule = get_rule(rule_id)
        if rule.ballot_kind not in (election.ballot_kind, BallotKind.NONE):
            _voting_fail(f"rule {rule_id!r} takes {rule.ballot_kind.value} ballots, but {election.name} has "
                         f"{election.vote_type} ballots ({election.ballot_kind.value}); choose another --rule")
        resolved = rule.resolve_params(params)
        # a fundcircle export names its round, so the round's public tie-break seed is rebuilt exactly
        seed_round = election.meta.get("fundcircle_round", "").strip() or f"pabulib:{election.name}"
        seed = make_seed(seed_round, ballot_digest(election.ballots))
        outcome = rule.tally(election.proposals, election.ballots, election.budget, resolved, seed)
    except FundcircleError as exc:
        _voting_fail(exc.user_message)
        return
    unit = election.budget.unit_minor
    result: dict[str, Any] = {
        "file": election.name,
        "rule": rule.id,
        "rule_source": why,
        "params": jsonable(resolved),
        "vote_type": election.vote_type,
        "ballots": len(election.ballots),
        "budget": _units_json(election.budget.amount_minor, unit),
        "selected": outcome.selected,
        "cost": _units_json(outcome.cost_minor, unit),
        "seed": seed,
    }
    if election.selected is not None:
        result["official_selected"] = list(election.selected)
        result["matches_official"] = set(outcome.selected) == set(election.selected)
    result["summary"] = jsonable(outcome.summary)
    result["trace"] = [step.to_json() for step in outcome.trace]
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    _print_simulation(election, outcome, result)


def _print_simulation(election: Any, outcome: Any, result: dict[str, Any]) -> None:
    """The human view: a table of proposals, then why each was or was not funded."""
    from fundcircle.voting.rules.approval_greedy import format_money

    unit = election.budget.unit_minor
    params = ", ".join(f"{k}={v}" for k, v in result["params"].items() if v is not None)
    click.echo(f"{election.name}: rule {result['rule']} ({result['rule_source']})")
    click.echo(f"  params: {params}")
    click.echo(f"  budget {format_money(election.budget.amount_minor, unit)} {election.budget.currency}; "
               f"{len(election.ballots):,} ballots ({election.vote_type})")
    click.echo("")
    order = {pid: i for i, pid in enumerate(outcome.selected)}
    official = set(election.selected or ())
    width = max([len(p.id) for p in election.proposals] + [7])
    header = f"  {'#':>3}  {'project':<{width}}  {'cost':>14}  {'score':>8}  funded"
    click.echo(header + ("  official" if election.selected is not None else ""))
    ranked = sorted(election.proposals, key=lambda p: (order.get(p.id, len(order)), election.proposals.index(p)))
    for p in ranked:
        position = str(order[p.id] + 1) if p.id in order else ""
        score = outcome.scores.get(p.id, "")
        line = (f"  {position:>3}  {p.id:<{width}}  {format_money(p.cost_minor, unit):>14}  {str(score):>8}  "
                f"{'yes' if p.id in order else 'no':<6}")
        if election.selected is not None:
            line += f"  {'yes' if p.id in official else 'no'}"
        click.echo(line)
    click.echo("")
    click.echo(f"  selected {len(outcome.selected)} projects costing "
               f"{format_money(outcome.cost_minor, unit)} of {format_money(election.budget.amount_minor, unit)}")
    if election.selected is not None:
        verdict = "matches" if result["matches_official"] else "DIFFERS FROM"
        click.echo(f"  this {verdict} the official outcome ({len(official)} projects)")
    click.echo("")
    click.echo("Why:")
    for step in outcome.trace:
        who = f"[{step.proposal_id}] " if step.proposal_id else ""
        click.echo(f"  {who}{step.message}")

# --- ledger: ledger verify, ledger balance (fundcircle/ledger) ---------------------------------

from fundcircle.ledger.commands import ledger_group  # noqa: E402  (commands live with the ledger)

main.add_command(ledger_group)

# --- app: up, db upgrade, demo, tally, export, reconcile ---------------------------------------

def _app():  # type: ignore[no-untyped-def]
    """The app for a command; configuration errors become one clear line, not a traceback."""
    from fundcircle import create_app
    from fundcircle.errors import ConfigurationError

    try:
        return create_app()
    except ConfigurationError as err:
        raise click.ClickException(err.user_message) from None


def _migrate(app) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.migrate import upgrade

    try:
        upgrade(app.config["DATABASE_URL"])
    except Exception as err:  # noqa: BLE001 - any driver error becomes one readable line
        raise click.ClickException(f"could not migrate {app.config['DATABASE_URL']}: {err}") from None


def _seed_demo(app) -> bool:  # type: ignore[no-untyped-def]
    """Seed the demo circle when the database has no circle yet; True when seeded."""
    from sqlalchemy import func, select

    from fundcircle.circles.models import Circle
    from fundcircle.db import begin_write, utcnow
    from fundcircle.demo import seed_demo
    from fundcircle.extensions import db

    with app.app_context():
        begin_write(db.session)
        if db.session.scalar(select(func.count()).select_from(Circle)):
            return False
        seed_demo(db.session, utcnow())
        db.session.commit()
    return True


def start_offline_fakes(app, host: str, port: int):  # type: ignore[no-untyped-def]
    """Start the local fake Stripe and fake Open Collective for the services without keys and point
    the app at them (the offline demo); (fake_stripe or None, fake_oc or None). Also used by the
    browser journey tests, so they run the demo wired exactly as ``fundcircle up`` wires it."""
    from fundcircle.integrations.fakes.stripe import start_for_app as start_fake_stripe
    from fundcircle.treasury.demo import connect_webhook, local_fake

    fake_stripe = start_fake_stripe(app, app_host=host, app_port=port)  # None with STRIPE_SECRET_KEY
    fake_oc = local_fake(app)  # None with OPENCOLLECTIVE_TOKEN
    if fake_oc is not None:
        connect_webhook(app, fake_oc, f"http://{host}:{port}")
    return fake_stripe, fake_oc


@main.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="port to listen on")
@click.option("--no-demo", is_flag=True, help="do not seed the demo circle into an empty database")
def up_command(host: str, port: int, no_demo: bool) -> None:
    """Migrate the database, seed the demo when it is empty, and serve the app."""
    from werkzeug.serving import run_simple

    app = _app()
    _migrate(app)
    if not no_demo and _seed_demo(app):
        click.echo("Seeded the demo circle 'Riverside Commons Fund'.")
    fake_stripe, fake_oc = start_offline_fakes(app, host, port)
    if fake_stripe is not None:
        click.echo(f"Stripe: no STRIPE_SECRET_KEY set; contributions use the local fake Stripe at "
                   f"{app.config['STRIPE_API_BASE']} (demo second-factor codes: fundcircle second-factor code EMAIL)")
    if fake_oc is not None:
        click.echo(f"Open Collective: no OPENCOLLECTIVE_TOKEN set; payouts use the local fake at "
                   f"{app.config['OPENCOLLECTIVE_API_URL']} (approve and pay expenses at {fake_oc.url}/)")
    click.echo(f"fundcircle is serving on http://{host}:{port}  (database: {app.config['DATABASE_URL']})")
    if app.config.get("OUTBOX_ENABLED"):
        click.echo(f"Sign-in mail goes to the dev outbox: http://{host}:{port}/dev/outbox")
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


@main.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
def db_upgrade_command() -> None:
    """Apply all migrations."""
    app = _app()
    _migrate(app)
    click.echo("Database is up to date.")


@main.command("demo")
def demo_command() -> None:
    """Seed the realistic demo circle (migrates first; does nothing if it exists)."""
    from fundcircle.db import begin_write, utcnow
    from fundcircle.demo import demo_exists, seed_demo
    from fundcircle.extensions import db

    app = _app()
    _migrate(app)
    with app.app_context():
        begin_write(db.session)
        if demo_exists(db.session):
            click.echo("The demo circle already exists.")
            return
        seed_demo(db.session, utcnow())
        db.session.commit()
    click.echo("Seeded the demo circle 'Riverside Commons Fund' (/c/riverside-commons).")


@main.command("tally")
@click.argument("round_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="print the stored result as one JSON object")
def tally_command(round_id: int, as_json: bool) -> None:
    """Close voting of ROUND_ID and tally it (idempotent: a tallied round prints its stored result)."""
    from fundcircle.extensions import db

    app = _app()
    try:
        _tally(app, round_id, as_json)
    finally:
        db.dispose(app)  # a one-shot command: close the pool's connections now, not at exit


def _tally(app, round_id: int, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    import json

    from fundcircle.db import begin_write, utcnow
    from fundcircle.errors import FundcircleError
    from fundcircle.extensions import db
    from fundcircle.rounds.models import Round
    from fundcircle.voting.operations import close_and_tally

    with app.app_context():
        begin_write(db.session)  # the close takes the write lock before its first read
        round_ = db.session.get(Round, round_id)
        if round_ is None:
            raise click.ClickException(f"there is no round {round_id}")
        try:
            result = close_and_tally(db.session, round_, utcnow())
        except FundcircleError as err:
            raise click.ClickException(err.user_message) from None
        db.session.commit()
        awards = [{"proposal_id": a.proposal_id, "title": a.proposal.title, "amount_minor": a.amount_minor,
                   "currency": a.currency, "earmarked": a.earmarked_at is not None,
                   "earmark_problem": a.earmark_problem} for a in result.awards]
        if as_json:
            click.echo(json.dumps({
                "round_id": round_id, "rule": result.rule_id, "params": result.params,
                "ballot_count": result.ballot_count, "member_count": result.member_count,
                "ballot_digest": result.ballot_digest, "seed": result.seed,
                "tallied_at": result.tallied_at.isoformat(), "awards": awards, "outcome": result.outcome,
            }, sort_keys=True))
            return
        click.echo(f"Round {round_id} “{round_.title}”: {result.rule_id}, {result.ballot_count} ballots of "
                   f"{result.member_count} members, tallied {result.tallied_at:%Y-%m-%d %H:%M} UTC")
        click.echo(f"ballot digest {result.ballot_digest}")
        for a in awards:
            note = "earmarked" if a["earmarked"] else f"NOT earmarked: {a['earmark_problem']}"
            click.echo(f"  funded #{a['proposal_id']} {a['title']}: {a['amount_minor']} {a['currency']} minor ({note})")
        if not awards:
            click.echo("  nothing funded")


# --- open data: export (fundcircle/transparency/opendata.py) --------------------------------------

@main.command("export")
@click.argument("round_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["pb", "csv", "json"]), required=True,
              help="pb: anonymised ballots (pabulib); csv / json: the published result")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write to this file (default: standard output)")
def export_command(round_id: int, fmt: str, output: str | None) -> None:
    """Export a tallied round's open data exactly as the public downloads publish it."""
    from fundcircle.extensions import db

    app = _app()
    try:
        text = _export(app, round_id, fmt)
    finally:
        db.dispose(app)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as err:
        raise click.ClickException(f"cannot write {output}: {err.strerror or err}") from None
    click.echo(f"wrote {output}", err=True)


def _export(app, round_id: int, fmt: str) -> str:  # type: ignore[no-untyped-def]
    import json

    from fundcircle.errors import FundcircleError
    from fundcircle.extensions import db
    from fundcircle.rounds.models import Round
    from fundcircle.transparency import opendata

    with app.app_context():
        round_ = db.session.get(Round, round_id)
        if round_ is None or round_.published_at is None:
            raise click.ClickException(f"there is no published round {round_id}")
        try:
            tr = opendata.tallied_round(db.session, round_.circle, round_,
                                        min_voters=opendata.configured_min_voters(app.config))
            if fmt == "pb":
                return opendata.pb_document(db.session, tr, secret=app.config["SECRET_KEY"])
            doc = opendata.results_document(db.session, tr)
        except FundcircleError as err:
            raise click.ClickException(err.user_message) from None
        if fmt == "csv":
            return opendata.results_csv(doc)
        return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


# --- second factor (TOTP): demo helper -----------------------------------------------------------

@main.group("second-factor")
def second_factor_group() -> None:
    """Second factor (TOTP) helpers."""


@second_factor_group.command("code")
@click.argument("email")
def second_factor_code_command(email: str) -> None:
    """Print the current code of a demo account's published authenticator (never in production)."""
    from sqlalchemy import select

    from fundcircle.auth import second_factor
    from fundcircle.auth.models import User
    from fundcircle.contributions.demo import demo_totp_secret
    from fundcircle.db import utcnow
    from fundcircle.extensions import db

    app = _app()
    if app.config["ENVIRONMENT"] == "production":
        raise click.ClickException("demo codes are not available in production")
    try:
        with app.app_context():
            user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
            cred = second_factor.credential_of(db.session, user) if user is not None else None
            if cred is None:
                raise click.ClickException(f"{email} has no authenticator")
            secret = second_factor.decrypt_secret(cred.secret_encrypted, app.config["SECRET_KEY"])
            if secret != demo_totp_secret(user.email):  # type: ignore[union-attr]
                raise click.ClickException(f"{email} uses a private authenticator, not the published demo one")
            click.echo(second_factor.totp(secret, utcnow()))
    finally:
        db.dispose(app)


@second_factor_group.command("reset")
@click.argument("email")
@click.option("--reason", required=True, help="why (kept in the audit log), e.g. 'lost phone, verified in person'")
def second_factor_reset_command(email: str, reason: str) -> None:
    """Remove a person's authenticator (an operator's action, audited); they enrol again."""
    from sqlalchemy import select

    from fundcircle.auth import second_factor
    from fundcircle.auth.models import User
    from fundcircle.db import begin_write, utcnow
    from fundcircle.extensions import db

    app = _app()
    try:
        with app.app_context():
            begin_write(db.session)
            user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
            if user is None:
                raise click.ClickException(f"there is no user {email}")
            if not second_factor.reset(db.session, user=user, actor=None, now=utcnow(), reason=reason):
                raise click.ClickException(f"{email} has no authenticator")
            db.session.commit()
    finally:
        db.dispose(app)
    click.echo(f"Removed the authenticator of {email}; they will be asked to enrol again.")


# --- treasury: reconcile (fundcircle/treasury, fundcircle/ledger/reconcile) ---------------------------

@main.command("reconcile")
@click.option("--circle", "slug", required=True, help="the circle's short name (slug)")
@click.option("--api", "from_api", is_flag=True, help="import from the Open Collective API")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="import an Open Collective transactions CSV export (either header style)")
@click.option("--full", is_flag=True, help="with --api: read the whole transaction history, not just what is new")
@click.option("--confirm", is_flag=True, help="post every proposed ledger entry after the import")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def reconcile_command(slug: str, from_api: bool, csv_file: str | None, full: bool, confirm: bool,
                      as_json: bool) -> None:
    """Import Open Collective activity for a circle and reconcile it with the ledger.

    Prints each award's state, the unexplained OC money and the proposed ledger entries. Nothing is
    posted unless --confirm is given; importing again never posts twice. Exit status 0 when the
    import ran (also with open proposals), 1 on an error (one line on stderr).
    """
    from fundcircle.extensions import db

    if from_api == bool(csv_file):
        raise click.UsageError("give exactly one of --api or --csv FILE")
    if full and not from_api:
        raise click.UsageError("--full goes with --api")
    app = _app()
    try:
        _reconcile(app, slug, from_api, csv_file, confirm, as_json, full=full)
    finally:
        db.dispose(app)


def _reconcile(app, slug: str, from_api: bool, csv_file: str | None, confirm: bool,  # type: ignore[no-untyped-def]
               as_json: bool, *, full: bool = False) -> None:
    import json
    from pathlib import Path

    from sqlalchemy import select

    from fundcircle.circles.models import Circle
    from fundcircle.db import begin_write, utcnow
    from fundcircle.errors import FundcircleError
    from fundcircle.extensions import db
    from fundcircle.ledger.money import format_money
    from fundcircle.treasury import operations as treasury_ops
    from fundcircle.treasury import queries as treasury_queries
    from fundcircle.treasury.demo import local_fake, stop_local_fake

    # without a token, the demo's local fake Open Collective (when the demo seeded one) answers
    fake = local_fake(app, only_if_seeded=True) if from_api else None
    try:
        with app.app_context():
            begin_write(db.session)
            circle = db.session.scalar(select(Circle).where(Circle.slug == slug))
            if circle is None:
                raise click.ClickException(f"there is no circle {slug!r}")
            now = utcnow()
            try:
                if from_api:
                    result = treasury_ops.import_from_api(db.session, circle, actor=None,
                                                          client=treasury_ops.make_client(app.config), now=now,
                                                          full=full)
                else:
                    assert csv_file is not None
                    result = treasury_ops.import_from_csv(db.session, circle, actor=None,
                                                          data=Path(csv_file).read_bytes(),
                                                          filename=Path(csv_file).name, now=now)
                posted = treasury_ops.confirm_all(db.session, circle, actor=None, now=now) if confirm else []
            except FundcircleError as err:
                db.session.rollback()
                raise click.ClickException(err.user_message) from None
            db.session.commit()
            report = treasury_queries.current_report(db.session, circle.id) if confirm else result.report
            open_entries = treasury_queries.open_proposals(db.session, circle.id)
            out = {
                "circle": circle.slug, "source": result.run.source, "import_id": result.run.id,
                "header_style": result.run.header_style or None, "rows_seen": result.run.rows_seen,
                "rows_new": result.rows_new, "proposals_new": result.proposals_new, **report.to_dict(),
                "proposals": [{"id": e.id, "kind": e.kind, "ledger_key": e.ledger_key, "award_id": e.award_id,
                               "amount_minor": e.amount_minor, "fee_minor": e.fee_minor, "currency": e.currency,
                               "reason": e.reason} for e in open_entries],
                "posted": [{"transaction_id": p.transaction_id, "seq": p.seq, "idempotency_key": p.idempotency_key,
                            "replayed": p.replayed} for p in posted],
            }
    finally:
        if fake is not None:
            stop_local_fake(app)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, sort_keys=True))
        return
    style = f", {out['header_style']} headers" if out["header_style"] else ""
    click.echo(f"{slug}: imported {out['rows_seen']} Open Collective rows from {out['source']}{style} "
               f"({out['rows_new']} new), {out['proposals_new']} new proposals")
    for line in out["awards"]:
        note = f" — {line['note']}" if line["note"] else ""
        click.echo(f"  award #{line['award_id']} {line['proposal_title']}: "
                   f"{format_money(line['amount_minor'], line['currency'])}  [{line['state']}]{note}")
    for u in out["unexplained"]:
        click.echo(f"  unexplained: {u['kind']} {u['ref']} {format_money(u['net_minor'], u['currency'])} "
                   f"“{u['description']}”")
    for p in out["proposals"]:
        click.echo(f"  proposal #{p['id']} {p['kind']} {format_money(p['amount_minor'], p['currency'])}: {p['reason']}")
    for p in out["posted"]:
        click.echo(f"  posted {p['idempotency_key']} (ledger seq {p['seq']}{', replay' if p['replayed'] else ''})")
    if not out["proposals"]:
        click.echo("  nothing to confirm")


if __name__ == "__main__":  # pragma: no cover
    main()
