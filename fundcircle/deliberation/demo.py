"""This package's part of the demo circle (called by fundcircle.demo.seed_demo): discussions on
winter and spring proposals, with answered and unanswered questions, a reply chain, a comment a
facilitator hid, and declared conflicts of interest.

Everything goes through the operations at times before ``ctx.now`` that fall in each round's
open phases, so the demo obeys the same rules (and sends the same notifications, which land in
the dev outbox) as the app.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from flask import current_app, has_app_context
from sqlalchemy import select

from fundcircle.deliberation import operations
from fundcircle.deliberation.models import Comment, CommentKind
from fundcircle.proposals.models import Proposal

if TYPE_CHECKING:
    from fundcircle.demo import DemoContext

#: where links in demo notifications point when no BASE_URL is configured (``fundcircle up``'s default)
DEMO_BASE_URL = "http://127.0.0.1:5000"


def _base_url() -> str:
    if has_app_context():
        return current_app.config.get("BASE_URL") or DEMO_BASE_URL
    return DEMO_BASE_URL


def seed_demo(ctx: DemoContext) -> None:
    """Add the discussions and conflicts. Flushes; the caller commits."""
    session, users, now = ctx.session, ctx.users, ctx.now
    base_url = _base_url()
    hour = dt.timedelta(hours=1)
    day = dt.timedelta(days=1)

    def proposal(round_key: str, title: str) -> Proposal:
        found = session.scalar(select(Proposal).where(Proposal.round_id == ctx.rounds[round_key].id,
                                                      Proposal.title == title))
        if found is None:  # pragma: no cover - the demo's own proposals
            raise LookupError(f"demo proposal {title!r} is missing")
        return found

    def say(p: Proposal, who: str, text: str, when: dt.datetime, *, kind: CommentKind = CommentKind.COMMENT,
            reply_to: Comment | None = None) -> Comment:
        return operations.post_comment(session, proposal=p, author=users[who], body=text, kind=kind,
                                       parent_id=reply_to.id if reply_to else None, now=when,
                                       base_url=base_url).comment

    def answer(question: Comment, who: str, text: str, when: dt.datetime) -> Comment:
        return operations.answer_question(session, question=question, author=users[who], body=text, now=when,
                                          base_url=base_url).comment

    # Winter (deliberation since now - 4 days, voting from now + 6 days).
    warm = proposal("winter", "Warm Wednesdays at the community hall")
    operations.declare_conflict(
        session, member=users["tomasz@riverside.example"], proposal=warm, level="disclose",
        category="organisation", reason="I cook with the Friday cooking club, which would make the soup.",
        now=now - 4 * day + 2 * hour)
    praise = say(warm, "tomasz@riverside.example",
                 "The Friday cooking club made soup for the street party last summer and people still talk "
                 "about it. Strongly in favour.", now - 4 * day + 3 * hour)
    weekly = say(warm, "hannah@riverside.example",
                 "Agreed. Could the advice centre come every week rather than twice a month? Energy bills are "
                 "what people ask about most.", now - 3 * day, reply_to=praise)
    rota = say(warm, "oliver@example.org",
               "We asked them. Twice a month is what they can staff until January; from February they will "
               "try weekly if two more volunteers join.", now - 3 * day + 5 * hour, reply_to=weekly)
    say(warm, "hannah@riverside.example", "Thanks, I will ask at the residents' meeting who could help.",
        now - 2 * day, reply_to=rota)
    access = say(warm, "lucia@riverside.example",
                 "Is the hall accessible for wheelchair users? The side entrance has three steps.",
                 now - 3 * day + 2 * hour, kind=CommentKind.QUESTION)
    answer(access, "oliver@example.org",
           "Yes: the caretaker opens the ramp door at the back on Wednesdays, and we will put up signs from the "
           "street. The accessible toilet is on the ground floor.", now - 2 * day + 4 * hour)

    laptops = proposal("winter", "Homework club laptops")
    say(laptops, "mei@riverside.example",
        "Are the laptops insured outside library hours, and who pays for repairs after the three years of "
        "support?", now - day - 3 * hour, kind=CommentKind.QUESTION)  # not answered yet
    address = say(laptops, "yusuf@riverside.example",
                  "Fatima lives at Mühlenstraße 14, second floor; people can drop old laptops there too.",
                  now - 3 * day + 6 * hour)
    operations.hide_comment(session, comment=address, actor=users["amara@riverside.example"],
                            reason="It gave a private home address. Please offer donations through the "
                                   "applicant instead.", now=now - 3 * day + 8 * hour, base_url=base_url)
    say(laptops, "jonas@riverside.example",
        "The school sometimes gives away old laptops in summer; worth asking before buying all four.",
        now - 2 * day + 1 * hour)

    repair = proposal("winter", "Repair café, winter season")
    operations.declare_conflict(
        session, member=users["priya@riverside.example"], proposal=repair, level="recuse",
        category="organisation", reason="I am on the repair café's volunteer committee.", now=now - 4 * day + hour)
    insurance = say(repair, "jonas@riverside.example",
                    "What did the event insurance cost last season, and does it cover the soldering station?",
                    now - 3 * day + 3 * hour, kind=CommentKind.QUESTION)
    answer(insurance, "leo@example.org",
           "85 euros per event last season; this year's quote is 90 and covers all our tools, soldering "
           "included. The rest of the insurance line is a spare for the public liability excess.",
           now - 2 * day + 2 * hour)

    # Spring (call open since now - 7 days; proposals submitted at now - 3 days).
    tools = proposal("spring", "Tool library in the old laundry room")
    liable = say(tools, "hannah@riverside.example",
                 "Who is liable if someone hurts themselves with a borrowed drill?", now - 2 * day,
                 kind=CommentKind.QUESTION)
    answer(liable, "rosa@example.org",
           "Borrowers sign a short waiver, and the housing association's liability cover includes the room. "
           "We will also show each first-time borrower how the tool works.", now - day - 2 * hour)
    say(tools, "mei@riverside.example", "Lovely idea. I have a long ladder I could donate.", now - day)

    football = proposal("spring", "Saturday football for under-12s")
    pitch = say(football, "yusuf@riverside.example",
                "Is the pitch booking with the district confirmed, or still to be applied for?", now - 2 * day + hour,
                kind=CommentKind.QUESTION)
    answer(pitch, "kwame@example.org",
           "Provisionally booked for every Saturday from April; the district confirms once we can pay the fee.",
           now - day + 3 * hour)
    session.flush()
