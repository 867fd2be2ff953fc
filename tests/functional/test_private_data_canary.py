"""No private data on any public surface.

Canary values are planted in every private field we know of (e-mails and names of members who
are not public, payee e-mails, screening notes, drafts, an unpublished round, a hidden comment,
a conflict's free-text reason, an invitation, treasurer notes and bank references, a Stripe id,
receipt codes, a sign-in link and code). Then an anonymous visitor crawls the site: from the
home page, the circle page, the open-data pages and the API index it follows every same-site link
in HTML (href/src) and every path in JSON, recursively, and downloads every export on the way.
No response (body or headers) may contain a canary.

The crawler knows no page names beyond its start points, so pages that other features add later
are covered as soon as something public links to them. The site is served as in production (no
development outbox).
"""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import sqlalchemy as sa

from fundcircle.db import utcnow
from tests.support import factories as f

HREF_RE = re.compile(r"""(?:href|src)\s*=\s*["']([^"'#]+)""", re.IGNORECASE)
#: at most this many distinct query strings per path (filters × pages would otherwise explode)
MAX_VARIANTS_PER_PATH = 12
MAX_PAGES = 1500


def _canary(kind: str) -> str:
    return f"zzcanary{kind}qq"


CANARY_NAMES = {n: _canary(f"membername{n}") for n in range(6)}


@pytest.fixture
def canary_site(app, database_url, tmp_path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Plant the canaries through the real operations; return the canaries and a production app."""
    from fundcircle import create_app, ledger
    from fundcircle.auth import operations as auth_ops
    from fundcircle.circles import operations as circle_ops
    from fundcircle.extensions import db
    from fundcircle.notifications.models import OutgoingMail
    from fundcircle.proposals import operations as proposal_ops
    from fundcircle.voting import operations as voting_ops

    now = utcnow()
    canaries: dict[str, str] = {}
    with app.app_context():
        s = db.session
        circle = f.create_circle(s, slug="canary-circle", facilitator_email="fiona@canary.example")
        facilitator = next(m.user for m in circle.memberships if m.is_facilitator)
        voters = []
        for n in range(6):
            email = f"{_canary(f'memberemail{n}')}@example.org"
            canaries[f"member e-mail {n}"] = email
            canaries[f"member name {n}"] = CANARY_NAMES[n]
            user = f.create_user(s, email, CANARY_NAMES[n])
            circle_ops.add_member(s, circle=circle, user=user, now=now - 60 * f.DAY)
            voters.append(user)
        applicant_email = f"{_canary('applicantemail')}@example.org"
        canaries["applicant e-mail"] = applicant_email
        applicant = f.create_user(s, applicant_email, "Paula Public-Applicant")

        opens = now - 40 * f.DAY
        round_ = f.create_round(s, circle, now=opens - 5 * f.DAY, title="Autumn grants", submissions_open_at=opens,
                                submissions_close_at=opens + 10 * f.DAY, deliberation_open_at=opens + 12 * f.DAY,
                                voting_open_at=opens + 20 * f.DAY, voting_close_at=now - f.DAY)
        # the control: a canary in a public field, which the crawl must find (the detector works)
        control = _canary("publiccontrol")
        fridge = f.create_proposal(s, round_, applicant, now=opens + f.DAY, title="Community fridge",
                                   summary=f"A shared fridge. {control}")
        canaries["payee e-mail"] = f"{_canary('payeeemail')}@example.org"
        laptops = f.create_proposal(s, round_, applicant, now=opens + f.DAY, title="Homework laptops",
                                    amount_requested_minor=600_00, budget_lines=[("Laptops", 600_00)],
                                    payee_kind="email", payee_oc_slug="", payee_email=canaries["payee e-mail"])
        canaries["draft title"], canaries["draft body"] = _canary("drafttitle"), _canary("draftbody")
        f.create_proposal(s, round_, applicant, submit=False, now=opens + 2 * f.DAY, title=canaries["draft title"],
                          summary=canaries["draft body"], description=canaries["draft body"] * 3)
        canaries["screening note"] = _canary("screeningnote")
        proposal_ops.screen_proposal(s, proposal=fridge, actor=facilitator, eligible=True,
                                     reason=canaries["screening note"], now=opens + 11 * f.DAY)

        canaries["unpublished round"] = _canary("unpublishedround")
        f.create_round(s, circle, publish=False, title=canaries["unpublished round"], now=now,
                       call_text=_canary("unpublishedcall"))
        canaries["unpublished call"] = _canary("unpublishedcall")

        during = opens + 13 * f.DAY
        try:  # deliberation (another package): a hidden comment's text is private
            from fundcircle.deliberation import operations as deliberation_ops

            canaries["hidden comment"] = _canary("hiddencomment")
            posted = deliberation_ops.post_comment(s, proposal=fridge, author=facilitator,
                                                   body=f"Off topic: {canaries['hidden comment']}", now=during,
                                                   base_url="http://localhost")
            deliberation_ops.hide_comment(s, comment=posted.comment, actor=facilitator, reason="Off topic.",
                                          now=during, base_url="http://localhost")
        except ImportError:  # pragma: no cover - the package is not there yet
            pass
        canaries["conflict reason"] = _canary("conflictreason")
        voting_ops.declare_conflict(s, member=voters[5], proposal=laptops, level="recuse", category="other",
                                    reason=canaries["conflict reason"], now=during)

        canaries["invitation e-mail"] = f"{_canary('inviteeemail')}@example.org"
        canaries["invitation message"] = _canary("invitationmessage")
        circle_ops.invite(s, circle=circle, actor=facilitator, email=canaries["invitation e-mail"],
                          as_facilitator=False, as_treasurer=False, message=canaries["invitation message"],
                          now=now, base_url="http://localhost", lifetime=f.DAY * 14)

        canaries["treasurer note"], canaries["bank reference"] = _canary("treasurernote"), _canary("bankref")
        ledger.record_contribution(s, circle, gross_minor=5_000_00, fee_minor=1_00, now=now - 50 * f.DAY,
                                   manual_reference=canaries["bank reference"], memo=canaries["treasurer note"])
        canaries["stripe payment id"] = "pi_" + _canary("stripe")
        ledger.record_contribution(s, circle, gross_minor=20_00, fee_minor=1_00, now=now - 49 * f.DAY,
                                   payment_intent_id=canaries["stripe payment id"])
        try:  # contributions (another package): an anonymous donor's name and message stay private
            from fundcircle.contributions.models import ContributionIntent, StripePayment

            canaries["anonymous donor"], canaries["anonymous message"] = _canary("donor"), _canary("donormessage")
            intent = ContributionIntent(public_id=_canary("intentid"), circle_id=circle.id, amount_minor=20_00,
                                        currency="EUR", donor_name=canaries["anonymous donor"],
                                        message=canaries["anonymous message"], is_anonymous=True, status="paid",
                                        payment_intent_id=canaries["stripe payment id"], created_at=now - 49 * f.DAY,
                                        updated_at=now - 49 * f.DAY)
            s.add(intent)
            s.flush()
            s.add(StripePayment(circle_id=circle.id, payment_intent_id=canaries["stripe payment id"],
                                contribution_intent_id=intent.id, currency="EUR", status="succeeded", gross_minor=20_00,
                                fee_minor=1_00, created_at=now - 49 * f.DAY, updated_at=now - 49 * f.DAY))
            s.flush()
        except ImportError:  # pragma: no cover - the package is not there yet
            pass

        choices = [[fridge.id], [fridge.id, laptops.id], [laptops.id], [fridge.id], [laptops.id], [fridge.id]]
        for n, (voter, ballot) in enumerate(zip(voters, choices)):
            receipt = voting_ops.cast_ballot(s, round_, voter, ballot, opens + 21 * f.DAY)
            canaries[f"receipt code {n}"] = receipt.code
        voting_ops.close_and_tally(s, round_, now - f.DAY)

        auth_ops.request_sign_in(s, email=voters[0].email, browser_nonce="nonce", ip_address="127.0.0.1",
                                 next_path="/", now=now, base_url="http://localhost",
                                 limits={"per_address": 5, "per_ip": 30, "lifetime": f.DAY})
        mail = s.scalar(sa.select(OutgoingMail).where(OutgoingMail.to_address == voters[0].email)
                        .order_by(OutgoingMail.id.desc()))
        token = re.search(r"/signin/link/(\S+)", mail.body_text)
        code = re.search(r"\b([A-Z0-9]{4}-[A-Z0-9]{4})\b", mail.body_text)
        assert token and code, mail.body_text
        canaries["sign-in link token"], canaries["sign-in code"] = token.group(1), code.group(1)
        s.commit()
        slug, round_id = circle.slug, round_.id
        draft_id = max(p.id for p in round_.proposals)

    public_app = create_app({"ENVIRONMENT": "production", "HTTPS": False, "DATABASE_URL": database_url,
                             "INSTANCE_PATH": tmp_path / "public-instance",
                             "SECRET_KEY": "production-like-secret-" + "p" * 32})
    yield {"canaries": canaries, "control": control, "app": public_app, "slug": slug, "round_id": round_id, "draft_id": draft_id}
    db.dispose(public_app)


def _links(path: str, response: Any) -> list[str]:
    found: list[str] = []
    if 300 <= response.status_code < 400 and response.location:
        found.append(response.location)
    if response.mimetype == "text/html":
        found += HREF_RE.findall(response.get_data(as_text=True))
    elif response.mimetype == "application/json":
        def walk(value: Any) -> None:
            if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
                found.append(value)
            elif isinstance(value, dict):
                for sub in value.values():
                    walk(sub)
            elif isinstance(value, list):
                for sub in value:
                    walk(sub)
        walk(response.get_json(silent=True))
    return [urljoin(path, link.replace("&amp;", "&")) for link in found]


def crawl(client: Any, starts: list[str]) -> dict[str, Any]:
    """Breadth-first over same-site GET links. Returns {url: response}; fails on any 5xx."""
    seen: dict[str, Any] = {}
    variants: Counter[str] = Counter()
    queue = deque(starts)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        parts = urlsplit(url)
        if parts.scheme not in ("", "http") or parts.netloc not in ("", "localhost"):
            continue  # another site (e.g. Open Collective)
        local = parts.path + (f"?{parts.query}" if parts.query else "")
        if local in seen or parts.path.startswith("/dev/"):
            continue
        if parts.query:
            variants[parts.path] += 1
            if variants[parts.path] > MAX_VARIANTS_PER_PATH:
                continue
        response = client.get(local)
        assert response.status_code < 500, f"{local} answered {response.status_code}"
        seen[local] = response
        queue.extend(_links(local, response))
    return seen


def test_no_canary_on_any_public_page_api_response_or_export(canary_site) -> None:  # type: ignore[no-untyped-def]
    site = canary_site
    slug, round_id = site["slug"], site["round_id"]
    client = site["app"].test_client()
    starts = ["/", f"/c/{slug}", f"/c/{slug}/data", "/data/schema", "/api/v1",
              # direct probes of private objects (nothing links to them): must not leak either
              f"/c/{slug}/r/{round_id}/p/{site['draft_id']}",
              f"/api/v1/circles/{slug}/rounds/{round_id}/proposals/{site['draft_id']}",
              f"/c/{slug}/r/{round_id + 1}", f"/api/v1/circles/{slug}/rounds/{round_id + 1}"]
    pages = crawl(client, starts)

    leaks = []
    control_seen = []
    for url, response in pages.items():
        text = response.get_data(as_text=True) + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        lowered = text.lower()
        if site["control"] in lowered:
            control_seen.append(url)
        for what, value in site["canaries"].items():
            if value.lower() in lowered:
                leaks.append(f"{what} on {url}")
    assert not leaks, "private data is public:\n" + "\n".join(leaks)
    assert control_seen, "the public control value was found nowhere: the detector or the crawl is broken"

    # the crawl really reached every kind of public surface (else it proves nothing)
    reached = set(pages)
    must = [f"/c/{slug}", f"/c/{slug}/r/{round_id}", f"/c/{slug}/data/ledger.csv", f"/c/{slug}/data/ledger.json",
            f"/c/{slug}/r/{round_id}/data/ballots.pb", f"/c/{slug}/r/{round_id}/data/results.json",
            f"/c/{slug}/r/{round_id}/data/ballots.json", f"/api/v1/circles/{slug}/ledger",
            f"/api/v1/circles/{slug}/rounds/{round_id}/result", f"/c/{slug}/r/{round_id}/receipt"]
    missing = [m for m in must if m not in reached]
    assert not missing, f"the crawler did not reach {missing}"
    proposal_pages = [u for u in reached if re.fullmatch(rf"/c/{slug}/r/{round_id}/p/\d+", u)]
    assert len(proposal_pages) >= 2
    ok = [u for u, r in pages.items() if r.status_code == 200]
    assert len(ok) >= 30, f"only {len(ok)} pages answered 200"
    # the planted data is really there, where it is public: the published ballots name the receipts
    listed = json.loads(pages[f"/c/{slug}/r/{round_id}/data/ballots.json"].get_data(as_text=True))
    assert listed["ballot_count"] == 6



def test_an_applicant_without_a_display_name_keeps_the_email_private(app) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.auth.models import User
    from fundcircle.extensions import db
    from tests.support.opendata import add_members, create_tallied_round

    with app.app_context():
        s = db.session
        circle = f.create_circle(s, slug="nameless")
        voters = add_members(s, circle, 5)
        round_, _, _ = create_tallied_round(s, circle, voters, [[0]] * 5, now=utcnow())
        applicant = s.scalar(sa.select(User).where(User.email == "applicant@nameless.example"))
        applicant.email, applicant.display_name = f"{_canary('localpart')}@example.org", ""
        slug, round_id = circle.slug, round_.id
        s.commit()
    pages = crawl(app.test_client(), [f"/c/{slug}", f"/c/{slug}/r/{round_id}", "/api/v1"])
    leaks = [url for url, r in pages.items() if _canary("localpart") in r.get_data(as_text=True).lower()]
    assert not leaks, f"the applicant's e-mail local part is public on {leaks}"
