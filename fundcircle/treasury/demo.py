"""This package's part of the demo circle (called by fundcircle.demo.seed_demo), and the local fake
Open Collective that ``fundcircle up`` uses when no Open Collective token is configured.

The demo story, told through the same operations and the same HTTP client a treasurer's clicks use
(against the fake, whose state is kept in ``<instance>/fake-opencollective.json`` so the dashboard's
"re-check" and ``fundcircle reconcile --api`` see the same Open Collective afterwards):

- the circle's money sits in the collective ``riverside-commons`` on (fake) Open Collective;
- the first autumn award was paid in OC with a processor fee, imported and confirmed: **paid (matched)**;
- the second has its expense created and approved in OC: **approved**;
- the third (the planted mismatch) was recorded in the ledger from a bank statement at the awarded
  amount, but OC paid less after the expense was edited there: **amount differs**, with a proposed
  correction (a reversal) and the payout as OC made it, waiting for the treasurer.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, has_app_context

from fundcircle.integrations.fakes.opencollective import FAKE_TOKEN, FakeOpenCollective

if TYPE_CHECKING:
    from fundcircle.demo import DemoContext

log = logging.getLogger(__name__)

DEMO_OC_SLUG = "riverside-commons"
FAKE_STATE_FILE = "fake-opencollective.json"
_EXTENSION_KEY = "fundcircle.fake_opencollective"


def uses_real_opencollective(config: Any) -> bool:
    token = config.get("OPENCOLLECTIVE_TOKEN") or ""
    return bool(token) and token != FAKE_TOKEN


def local_fake(app: Flask, *, only_if_seeded: bool = False) -> FakeOpenCollective | None:
    """Start (once per app) the fake Open Collective on the instance's state file and point the app's
    OPENCOLLECTIVE_* settings at it. None when a real token is configured, in production, or (with
    ``only_if_seeded``) when no demo state exists. Port: FUNDCIRCLE_FAKE_OC_PORT (default: any free)."""
    if uses_real_opencollective(app.config) or app.config.get("ENVIRONMENT") == "production":
        return None
    running = app.extensions.get(_EXTENSION_KEY)
    if running is not None:
        return running  # type: ignore[no-any-return]
    state = Path(app.config["INSTANCE_PATH"]) / FAKE_STATE_FILE
    if only_if_seeded and not state.exists():
        return None
    fake = FakeOpenCollective(state_path=state, auto_create_payees=True,
                              port=int(os.environ.get("FUNDCIRCLE_FAKE_OC_PORT", "0")))
    fake.add_token(FAKE_TOKEN)
    fake.start()
    app.config.update(OPENCOLLECTIVE_API_URL=fake.graphql_url, OPENCOLLECTIVE_WEBSITE_URL=fake.url,
                      OPENCOLLECTIVE_TOKEN=FAKE_TOKEN)
    app.extensions[_EXTENSION_KEY] = fake
    return fake


def connect_webhook(app: Flask, fake: FakeOpenCollective, base_url: str) -> None:
    """Let the fake deliver its (unsigned) webhooks to this app, as OC would in production."""
    import secrets

    secret = app.config.get("OPENCOLLECTIVE_WEBHOOK_SECRET") or secrets.token_urlsafe(24)
    app.config["OPENCOLLECTIVE_WEBHOOK_SECRET"] = secret
    with fake.lock:
        fake.state["webhooks"] = [h for h in fake.state["webhooks"] if "/webhooks/opencollective/" not in h["webhookUrl"]]
        fake.state["webhooks"].append({"id": "fundcircle-demo", "account": DEMO_OC_SLUG, "activityType": "ACTIVITY_ALL",
                                       "webhookUrl": f"{base_url.rstrip('/')}/webhooks/opencollective/{secret}"})
        fake.save()


def seed_demo(ctx: DemoContext) -> None:
    """Pay, approve and plant a mismatch for the autumn round's awards (see the module docstring)."""
    from fundcircle.treasury import operations as ops

    treasurer = ctx.users["jonas@riverside.example"]
    ops.set_oc_account(ctx.session, ctx.circle, actor=treasurer, slug=DEMO_OC_SLUG, now=ctx.now - dt.timedelta(days=30))
    if not has_app_context():
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    started_here = _EXTENSION_KEY not in app.extensions
    saved = {k: app.config.get(k) for k in ("OPENCOLLECTIVE_API_URL", "OPENCOLLECTIVE_WEBSITE_URL",
                                            "OPENCOLLECTIVE_TOKEN")}
    if started_here and not uses_real_opencollective(app.config):
        # a new demo circle starts a new Open Collective: a state file left from an earlier demo
        # database holds expenses whose award references would collide with the new awards
        (Path(app.config["INSTANCE_PATH"]) / FAKE_STATE_FILE).unlink(missing_ok=True)
    fake = local_fake(app)
    if fake is None:
        log.info("treasury demo: a real Open Collective is configured; no payouts are created")
        return
    client = ops.make_client(app.config)
    client.sleep = lambda _s: None  # the local fake never needs a pause; do not slow the start-up
    try:
        awards = _autumn_awards(ctx)
        if not awards:
            log.info("treasury demo: the autumn round has no awards; nothing to pay")
            return
        _seed_fake_collective(fake, ctx)
        _tell_story(ctx, fake, client, awards)
    finally:
        client.http.close()
        if started_here:  # `fundcircle demo` and tests: the fake lived only for the seeding
            stop_local_fake(app)
            app.config.update(saved)


def stop_local_fake(app: Flask) -> None:
    fake = app.extensions.pop(_EXTENSION_KEY, None)
    if fake is not None:
        fake.stop()


def _autumn_awards(ctx: DemoContext) -> list[Any]:
    """The autumn round's earmarked awards; tallies the round through the voting operations first
    when the voting demo has not (members approve the proposals they like before voting closes)."""
    from fundcircle.voting import operations as voting_ops

    autumn = ctx.rounds["autumn"]
    if voting_ops.stored_result(ctx.session, autumn.id) is None:
        proposal_ids = [row[0] for row in voting_ops.eligible_proposals(ctx.session, autumn.id)]
        during = autumn.voting_open_at + dt.timedelta(days=2)
        voters = [u for email, u in ctx.users.items() if email.endswith("@riverside.example")]
        for n, voter in enumerate(voters):
            # most members like the tree watering and the seed library; some also the repair stand
            liked = proposal_ids[:2] if n % 3 else proposal_ids
            try:
                voting_ops.cast_ballot(ctx.session, autumn, voter, liked, during + dt.timedelta(hours=n))
            except Exception as exc:  # noqa: BLE001 - a demo voter the rules refuse just does not vote
                log.info("treasury demo: %s did not vote: %s", voter.email, exc)
        voting_ops.close_and_tally(ctx.session, autumn, autumn.voting_close_at)
    awards = list(ctx.session.scalars(voting_ops.select_awards(autumn.id)))
    return [a for a in awards if a.earmarked_at is not None and a.amount_minor > 0]


def _seed_fake_collective(fake: FakeOpenCollective, ctx: DemoContext) -> None:
    """The collective with the money the host received (bank transfers and Stripe payouts)."""
    if DEMO_OC_SLUG in fake.state["accounts"]:
        return
    fake.add_account(DEMO_OC_SLUG, name=ctx.circle.name, currency=ctx.circle.currency)
    founded = ctx.now - dt.timedelta(days=60)
    fake.add_funds(DEMO_OC_SLUG, 2_500_00, kind="ADDED_FUNDS", from_slug="riverside-founders",
                   description="Founding members' bank transfer", at=founded)
    fake.add_funds(DEMO_OC_SLUG, 1_200_00, kind="ADDED_FUNDS", from_slug="baeckerei-mueller",
                   description="Pledge from Bäckerei Müller", at=ctx.now - dt.timedelta(days=33))


def _tell_story(ctx: DemoContext, fake: FakeOpenCollective, client: Any, awards: list[Any]) -> None:
    from fundcircle import ledger
    from fundcircle.integrations.opencollective import minor_to_oc_cents
    from fundcircle.treasury import operations as ops
    from fundcircle.treasury import queries
    from fundcircle.treasury.models import ProposalKind

    session, circle, now = ctx.session, ctx.circle, ctx.now
    treasurer = ctx.users["jonas@riverside.example"]
    paid, approved, mismatch = (awards + [None, None])[:3]

    def at(days_ago: float) -> dt.datetime:
        return now - dt.timedelta(days=days_ago)

    payouts = {}
    for award, when in ((paid, 30), (approved, 12), (mismatch, 20)):
        if award is not None:
            payouts[award.id] = ops.create_payout(session, circle, award, actor=treasurer, client=client, now=at(when))
    fake.process(payouts[paid.id].oc_public_id, "APPROVE")
    fake.process(payouts[paid.id].oc_public_id, "PAY", {"paymentProcessorFeeInHostCurrency": 1_20})
    if approved is not None:
        fake.process(payouts[approved.id].oc_public_id, "APPROVE")
    if mismatch is not None:
        # the treasurer recorded the payout from the bank statement at the awarded amount...
        round_ = ctx.rounds["autumn"]
        ledger.record_payout(session, round_, mismatch.proposal, expense_id=payouts[mismatch.id].oc_public_id,
                             amount_minor=mismatch.amount_minor, now=at(8), actor_id=treasurer.id)
        # ...but the expense had been edited down in Open Collective before it was paid
        expense = fake.find_expense(payouts[mismatch.id].oc_public_id)
        expense["amount_cents"] = minor_to_oc_cents(mismatch.amount_minor - 50_00, mismatch.currency)
        fake.process(expense["publicId"], "APPROVE")
        fake.process(expense["publicId"], "PAY", {"paymentProcessorFeeInHostCurrency": 2_10})
    ops.import_from_api(session, circle, actor=treasurer, client=client, now=at(2))
    # the treasurer confirmed the first payout and explained the host's bank transfers
    for entry in queries.open_proposals(session, circle.id):
        if entry.kind == ProposalKind.RECORD_PAYOUT.value and entry.award_id == paid.id:
            ops.confirm_proposal(session, circle, entry, actor=treasurer, now=at(1.5), note="matches OC")
        elif entry.kind == ProposalKind.HOLD_IN_SUSPENSE.value and entry.award_id is None:
            ops.dismiss_proposal(session, circle, entry, actor=treasurer, now=at(1.5),
                                 note="recorded by hand from the bank statement (manual contribution)")
    for entry in queries.open_proposals(session, circle.id):
        if entry.kind == ProposalKind.RECORD_CONTRIBUTION.value:
            ops.dismiss_proposal(session, circle, entry, actor=treasurer, now=at(1.5),
                                 note="already in the ledger as a manual contribution")
    ops.import_from_api(session, circle, actor=treasurer, client=client, now=at(1))
