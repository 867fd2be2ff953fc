"""A realistic demo circle: members with roles, a round taking proposals, a consent round and a
quadratic-voting round in their voting week, and a closed round whose awards come from its tally
and are earmarked in the ledger.

Built through the same operations a person would use (with ``now`` set to when each step would
have happened), so the demo obeys every rule the app enforces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fundcircle.auth.models import User
from fundcircle.circles import operations as circle_ops
from fundcircle.circles.models import Circle
from fundcircle.proposals import operations as proposal_ops
from fundcircle.proposals.models import PayeeKind, Proposal
from fundcircle.rounds import operations as round_ops
from fundcircle.rounds.models import Round

DEMO_SLUG = "riverside-commons"

MEMBERS = [
    # (email, name, facilitator, treasurer)
    ("amara@riverside.example", "Amara Okafor", True, False),
    ("jonas@riverside.example", "Jonas Weber", False, True),
    ("lucia@riverside.example", "Lucía Fernández", False, False),
    ("tomasz@riverside.example", "Tomasz Nowak", False, False),
    ("hannah@riverside.example", "Hannah Clarke", False, False),
    ("yusuf@riverside.example", "Yusuf Demir", False, False),
    ("mei@riverside.example", "Mei Chen", False, False),
    ("priya@riverside.example", "Priya Raman", True, False),
]

APPLICANTS = [
    ("rosa@example.org", "Rosa Martins"),
    ("kwame@example.org", "Kwame Mensah"),
    ("ines@example.org", "Inês Duarte"),
    ("oliver@example.org", "Oliver Brandt"),
    ("fatima@example.org", "Fatima Zahra"),
    ("leo@example.org", "Leo Varga"),
]


@dataclass
class DemoProposal:
    applicant: str
    title: str
    summary: str
    description: str
    lines: list[tuple[str, int]]
    payee_kind: str = PayeeKind.OPENCOLLECTIVE.value
    payee: str = ""

    @property
    def amount_minor(self) -> int:
        return sum(a for _, a in self.lines)


SPRING_PROPOSALS = [
    DemoProposal(
        "rosa@example.org", "Tool library in the old laundry room",
        "A lending shelf of drills, ladders and garden tools so neighbours stop buying things they use twice a year.",
        "The block's old laundry room has stood empty since 2023. With the housing association's permission we "
        "will fit shelving and a simple sign-out book, and stock it with donated and second-hand tools. Three "
        "volunteers will keep Saturday-morning opening hours. We will count loans each month and report back at "
        "the circle's spring meeting. Anything left over at the end goes to repairs.",
        [("Shelving and locks", 42000), ("Second-hand tools", 51000), ("Signage and sign-out books", 7000)],
        payee="riverside-tool-library"),
    DemoProposal(
        "kwame@example.org", "Saturday football for under-12s",
        "Weekly coached games at Lindenpark for children whose families cannot pay club fees.",
        "Twenty-five children already turn up informally on Saturdays. Two volunteer coaches with youth licences "
        "will run 30 sessions between April and October. The money buys balls, bibs, cones and a first-aid kit, "
        "and covers the pitch booking fee the district charges for organised groups. Parents will help with "
        "snacks on a rota. We will keep attendance and ask the children what they want to change halfway through.",
        [("Pitch booking, 30 sessions", 60000), ("Balls, bibs and cones", 23000), ("First-aid kit", 4500)],
        payee="lindenpark-kickers"),
]
SPRING_DRAFT = DemoProposal(
    "ines@example.org", "Pollinator strip along the canal path",
    "Turning 200 metres of mown verge into native wildflowers.",
    "Early draft; we are still talking to the waterways office.",
    [("Seed mix and plugs", 38000)], payee_kind=PayeeKind.NONE.value)

WINTER_PROPOSALS = [
    DemoProposal(
        "oliver@example.org", "Warm Wednesdays at the community hall",
        "A heated, free afternoon space with soup, board games and a phone-charging table, December to March.",
        "Many older neighbours are cutting back on heating. The community hall is free on Wednesday afternoons and "
        "the caretaker has agreed to open it. We will serve soup made by the Friday cooking club, lend out board "
        "games and have a volunteer from the advice centre on hand twice a month. The grant covers the hall's "
        "heating surcharge, ingredients and a small amount of crockery. We will keep a head count every week.",
        [("Heating surcharge, 16 afternoons", 64000), ("Soup ingredients", 48000), ("Crockery and urns", 18000)],
        payee="warm-wednesdays"),
    DemoProposal(
        "fatima@example.org", "Homework club laptops",
        "Four refurbished laptops so the Tuesday homework club can help pupils who have no computer at home.",
        "The homework club at the library has 18 regular pupils and two shared computers. Teachers now set most "
        "homework online. Four refurbished laptops with three years of support, a lockable charging trolley and "
        "basic software licences would mean nobody waits an hour for a turn. The library will insure them.",
        [("Four refurbished laptops", 92000), ("Lockable charging trolley", 21000)],
        payee_kind=PayeeKind.EMAIL.value, payee="fatima@example.org"),
    DemoProposal(
        "leo@example.org", "Repair café, winter season",
        "Monthly repair afternoons for bikes, lamps, clothes and small electronics.",
        "Six volunteers with repair skills run a café-style afternoon once a month. People bring broken things and "
        "learn to fix them with help. We need a soldering station, a sewing machine service, consumables and "
        "insurance for the events. Last season we fixed 140 items out of 190 brought in; we log every repair.",
        [("Soldering station and tools", 26000), ("Consumables", 15000), ("Event insurance", 9000)],
        payee="riverside-repair-cafe"),
    DemoProposal(
        "rosa@example.org", "Stairwell murals with Grundschule Nord",
        "Pupils design murals for the three darkest stairwells of the estate.",
        "Tenants have asked for years to brighten the stairwells. An art teacher and a local muralist will run "
        "four workshops with pupils of year 4, who design the murals; volunteers paint them over two weekends. "
        "The housing association pays for wall preparation; we ask for paint, brushes and the artist's fee.",
        [("Artist's fee", 80000), ("Paint and materials", 35000)],
        payee="riverside-tool-library"),
]

AUTUMN_PROPOSALS = [
    DemoProposal(
        "kwame@example.org", "Street tree watering rota",
        "Watering bags and a rota for 40 young street trees through the dry months.",
        "The city planted 40 trees on our streets last year and a third of them struggled in the heat. Watering "
        "bags slowly release water over a day; neighbours adopt a tree and refill its bag once a week.",
        [("Watering bags", 36000), ("Rota signs and tags", 6000)], payee="green-streets-riverside"),
    DemoProposal(
        "ines@example.org", "Seed library at the bakery",
        "A small cabinet of free vegetable and flower seeds, refilled by local gardeners.",
        "The bakery on Mühlenstraße has offered a spot by the door. We will build a cabinet, print envelopes and "
        "run two seed-saving workshops so the library refills itself after the first year.",
        [("Cabinet", 15000), ("Envelopes and printing", 5000), ("Workshop materials", 8000)],
        payee="green-streets-riverside"),
    DemoProposal(
        "oliver@example.org", "Bike repair stand by the station",
        "A public bike repair stand with tools on cables and a pump.",
        "Commuters and children fix flats at the station entrance with nothing but their hands. A public stand "
        "with tethered tools and a pump costs little to keep up; the station café will report damage.",
        [("Repair stand with tools", 95000), ("Installation", 30000)], payee="riverside-repair-cafe"),
    DemoProposal(
        "leo@example.org", "Community compost bays behind the allotments",
        "Three timber compost bays and a shredder day each season for the allotments and balcony gardeners.",
        "Kitchen and garden waste from the estate goes to the bin lorry while the allotments buy compost. Three "
        "bays with lids, a sign explaining what goes in, and a hired shredder twice a year would close that "
        "loop. The allotment association will turn the heaps; we will weigh what goes in for the first season.",
        [("Timber and lids", 52000), ("Shredder hire, two days", 24000), ("Signs", 14000)],
        payee="green-streets-riverside"),
]

#: who approved what in the autumn round (approval voting): member e-mail -> proposal numbers
#: (1-based, in AUTUMN_PROPOSALS order). Watering 7, seed library 6, bike stand 5, compost 3 votes.
AUTUMN_APPROVALS = {
    "amara@riverside.example": (1, 2, 3),
    "jonas@riverside.example": (1, 2),  # changed to (1, 2, 4) two days later
    "lucia@riverside.example": (1, 3),
    "tomasz@riverside.example": (1, 2, 3, 4),
    "hannah@riverside.example": (2, 3),
    "yusuf@riverside.example": (1, 3, 4),
    "mei@riverside.example": (1, 2),
    "priya@riverside.example": (1, 2),
}

PLAY_PROPOSALS = [
    DemoProposal(
        "fatima@example.org", "Board game library for the youth club",
        "Forty good board games and shelves, so the Thursday youth club has more to do than phones.",
        "The youth club at the community centre meets on Thursday evenings with about thirty teenagers. The "
        "youth workers asked for games that get people talking: cooperative games, strategy games and party "
        "games in several languages. Games can be borrowed over the weekend with a sign-out card.",
        [("Forty board games", 26000), ("Shelving", 6000)], payee_kind=PayeeKind.EMAIL.value,
        payee="fatima@example.org"),
    DemoProposal(
        "kwame@example.org", "Open-air cinema night at Lindenpark",
        "One free outdoor film evening in late summer, with a family film and a later screening for grown-ups.",
        "We will rent a screen, projector and sound for one evening, pay the public screening licences and ask "
        "the bakery to run a stall. Neighbours vote on the films beforehand. The park office has agreed in "
        "principle; we will apply for the event permit once funded.",
        [("Screen, projector and sound hire", 38000), ("Screening licences", 12000), ("Flyers", 6000)],
        payee="lindenpark-kickers"),
    DemoProposal(
        "hannah@riverside.example", "Street piano under the railway bridge",
        "A weather-proofed second-hand piano that anyone can play, with a cover at night.",
        "A piano shop will donate an upright and tune it twice a year at cost. We need a weather-proof "
        "housing, a lockable cover for the night and a small plaque. Two neighbours will lock and unlock it "
        "every day. Hannah is a member of the circle and is recused from this proposal automatically.",
        [("Weather-proof housing and cover", 33000), ("Tuning, two visits", 8000), ("Plaque", 4000)],
        payee="riverside-street-piano"),
    DemoProposal(
        "ines@example.org", "Half-term theatre workshop for children",
        "A four-day theatre workshop for 8 to 12 year-olds, ending in a performance for the parents.",
        "A local actor and a drama teacher will run four mornings of games, scenes and costume-making in the "
        "community hall during the February half-term, for twenty children. Places are free; families who "
        "cannot bring lunch get one.",
        [("Two workshop leaders, four mornings", 36000), ("Costumes and props", 8000), ("Lunches", 4000)],
        payee="riverside-kids-theatre"),
]


def _user(session: Session, email: str, name: str, now: dt.datetime) -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, display_name=name, created_at=now)
        session.add(user)
        session.flush()
    return user


def _round(session: Session, circle: Circle, facilitator: User, *, title: str, call: str, budget_minor: int,
           rule_id: str, params: dict, opens: dt.datetime, closes: dt.datetime, deliberation: dt.datetime,
           voting_opens: dt.datetime, voting_closes: dt.datetime, created: dt.datetime,
           min_minor: int | None = None, max_minor: int | None = None,
           required: list[str] | None = None) -> Round:
    data = round_ops.RoundData(
        title=title, call_text=call, budget_minor=budget_minor, currency=circle.currency, rule_id=rule_id,
        rule_params=params, submissions_open_at=opens, submissions_close_at=closes,
        deliberation_open_at=deliberation, voting_open_at=voting_opens, voting_close_at=voting_closes,
        min_request_minor=min_minor, max_request_minor=max_minor, required_fields=required or [])
    round_ = round_ops.create_round(session, circle=circle, actor=facilitator, data=data, now=created)
    round_ops.publish_round(session, round_=round_, actor=facilitator, now=created)
    return round_


def _propose(session: Session, round_: Round, demo: DemoProposal, users: dict[str, User], when: dt.datetime,
             submit: bool = True) -> Proposal:
    data = proposal_ops.ProposalData(
        title=demo.title, summary=demo.summary, description=demo.description,
        amount_requested_minor=demo.amount_minor, payee_kind=demo.payee_kind,
        payee_oc_slug=demo.payee if demo.payee_kind == PayeeKind.OPENCOLLECTIVE.value else "",
        payee_email=demo.payee if demo.payee_kind == PayeeKind.EMAIL.value else "",
        budget_lines=list(demo.lines))
    return proposal_ops.create_proposal(session, round_=round_, applicant=users[demo.applicant], data=data,
                                        now=when, submit=submit)


def demo_exists(session: Session) -> bool:
    return session.scalar(select(Circle.id).where(Circle.slug == DEMO_SLUG)) is not None


def seed_demo(session: Session, now: dt.datetime) -> Circle:
    """Create the demo circle (idempotent: returns the existing one). Flushes; the caller commits."""
    existing = session.scalar(select(Circle).where(Circle.slug == DEMO_SLUG))
    if existing is not None:
        return existing
    day = dt.timedelta(days=1)
    founded = now - 120 * day
    users = {email: _user(session, email, name, founded) for email, name, *_ in MEMBERS}
    users.update({email: _user(session, email, name, founded) for email, name in APPLICANTS})
    amara = users["amara@riverside.example"]
    circle = circle_ops.create_circle(
        session, founder=amara, slug=DEMO_SLUG, name="Riverside Commons Fund", currency="EUR", now=founded,
        purpose=("Riverside Commons Fund is a circle of neighbours in the Riverside district who pool money "
                 "every season and decide together which small community projects to fund.\n\n"
                 "Anyone may propose a project; members read, ask questions and vote. Every decision and every "
                 "euro is published here."))
    for email, _name, facilitator, treasurer in MEMBERS[1:]:
        circle_ops.add_member(session, circle=circle, user=users[email], now=founded, facilitator=facilitator,
                              treasurer=treasurer, actor=amara)

    # A closed round whose awards are earmarked in the ledger.
    autumn = _round(
        session, circle, amara, title="Autumn 2026: Green Streets", budget_minor=2_000_00,
        call="Small projects that make our streets greener, cooler or kinder to walk and cycle in.",
        rule_id="approval-greedy", params={}, created=now - 90 * day, opens=now - 88 * day,
        closes=now - 60 * day, deliberation=now - 60 * day, voting_opens=now - 45 * day,
        voting_closes=now - 35 * day, max_minor=1_500_00)
    autumn_props = [_propose(session, autumn, d, users, now - 80 * day) for d in AUTUMN_PROPOSALS]

    # A consent round in its voting week (opened a day ago).
    winter = _round(
        session, circle, amara, title="Winter 2026/27: Warm Spaces", budget_minor=4_000_00,
        call=("Projects that help neighbours through the cold months: warm places to meet, food, company, "
              "and help with the things that make winter harder.\n\nRequests between 250 and 1,500 euros. "
              "Members decide by consent: a proposal passes unless a member raises a reasoned objection that "
              "is not resolved."),
        rule_id="consent", params={"quorum": "1/2"}, created=now - 40 * day, opens=now - 35 * day,
        closes=now - 5 * day, deliberation=now - 4 * day, voting_opens=now - day,
        voting_closes=now + 7 * day, min_minor=250_00, max_minor=1_500_00,
        required=["description", "budget_lines", "payee"])
    for demo in WINTER_PROPOSALS:
        _propose(session, winter, demo, users, now - 20 * day)

    # A quadratic-voting round in its voting week, with a member's own proposal (automatic recusal).
    play = _round(
        session, circle, amara, title="Play & Culture Quick Round", budget_minor=1_500_00,
        call=("A small, quick round for play and culture: games, music, film and theatre that bring neighbours "
              "of all ages together.\n\nRequests between 100 and 600 euros. Members vote with quadratic "
              "voting: 100 voice credits each, and a second vote on the same proposal costs more than the first."),
        rule_id="quadratic", params={"credits": "100"}, created=now - 35 * day, opens=now - 30 * day,
        closes=now - 16 * day, deliberation=now - 15 * day, voting_opens=now - 2 * day,
        voting_closes=now + 5 * day, min_minor=100_00, max_minor=600_00,
        required=["description", "budget_lines"])
    for demo in PLAY_PROPOSALS:
        _propose(session, play, demo, users, now - 20 * day)

    # A round taking proposals now.
    spring = _round(
        session, circle, amara, title="Spring 2027: Small Neighbourhood Projects", budget_minor=6_000_00,
        call=("Got an idea that would make Riverside a better place to live? This round funds small, practical "
              "projects run by neighbours: tools, play, food, repair, greening, culture.\n\n"
              "Ask for 250 to 1,500 euros, tell us what you will do, for whom, and how you will know it worked, "
              "and list what the money buys. Members will read every proposal and may ask you questions before "
              "they vote with quadratic voting."),
        rule_id="quadratic", params={"credits": "100"}, created=now - 10 * day, opens=now - 7 * day,
        closes=now + 14 * day, deliberation=now + 14 * day, voting_opens=now + 21 * day,
        voting_closes=now + 28 * day, min_minor=250_00, max_minor=1_500_00,
        required=["description", "budget_lines"])
    for demo in SPRING_PROPOSALS:
        _propose(session, spring, demo, users, now - 3 * day)
    _propose(session, spring, SPRING_DRAFT, users, now - 2 * day, submit=False)

    _seed_ledger(session, circle, autumn, now)
    _vote_and_tally_autumn(session, autumn, autumn_props, users)
    session.flush()
    ctx = DemoContext(session=session, circle=circle, users=users,
                      rounds={"autumn": autumn, "winter": winter, "play": play, "spring": spring}, now=now)
    for seed_extension in _demo_extensions():
        seed_extension(ctx)
    session.flush()
    return circle


@dataclass
class DemoContext:
    """What the feature packages' demo seeders build on (each adds its own part of the story)."""

    session: Session
    circle: Circle
    users: dict[str, User]
    rounds: dict[str, Round]
    now: dt.datetime


def _demo_extensions() -> list[Callable[[DemoContext], None]]:
    # Each feature package seeds its own part of the demo, in this order (later ones may build on earlier).
    from fundcircle.contributions import demo as contributions_demo
    from fundcircle.deliberation import demo as deliberation_demo
    from fundcircle.treasury import demo as treasury_demo
    from fundcircle.voting import demo as voting_demo

    return [deliberation_demo.seed_demo, voting_demo.seed_demo, contributions_demo.seed_demo,
            treasury_demo.seed_demo]


def _seed_ledger(session: Session, circle: Circle, closed_round: Round, now: dt.datetime) -> None:
    """Fund the pot (enough for the closed round's budget), when the ledger package provides it."""
    try:
        from fundcircle.ledger.demo import fund_demo_pot
    except ImportError:  # the ledger's demo seeding is optional for the rest of the demo
        return
    fund_demo_pot(session, circle, now, needed_minor=closed_round.budget_minor)


def _vote_and_tally_autumn(session: Session, autumn: Round, proposals: list[Proposal],
                           users: dict[str, User]) -> None:
    """The members' autumn ballots, cast during its voting week, then the close: the rule decides
    the awards and ``earmark_awards`` earmarks them in the ledger (as the automatic close would)."""
    from fundcircle.voting import operations as voting_ops

    opened = autumn.voting_open_at
    for n, (email, picks) in enumerate(AUTUMN_APPROVALS.items()):
        when = opened + dt.timedelta(days=1 + n % 6, hours=7 + 2 * n)
        voting_ops.cast_ballot(session, autumn, users[email], [proposals[i - 1].id for i in picks], when)
    # Jonas first approved only two, then changed his ballot two days later (the last ballot counts)
    voting_ops.cast_ballot(session, autumn, users["jonas@riverside.example"],
                           [proposals[0].id, proposals[1].id, proposals[3].id], opened + dt.timedelta(days=4))
    voting_ops.close_and_tally(session, autumn, autumn.voting_close_at + dt.timedelta(minutes=3))
