"""The lists of referrals page by cursor: through the real pages, in the order each list promises,
keeping the filters, never repeating or skipping a row when another changes between two pages, and
with the same number of queries whatever the number of referrals."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from itertools import cycle
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import insert, select, update

from referral.cases.models import Referral
from referral.cases.process import OPEN_STATES, State
from referral.cases.vocabulary import Urgency
from referral.extensions import db
from referral.pagination import PER_PAGE, Position, encode_cursor

from . import factories
from .test_workflow import QueryCounter

BASE = datetime(2026, 10, 1, 8)
# The generated sort keys are the database's business: never written by the copies below.
GENERATED = {"id", "inbox_rank", "inbox_due", "draft_first"}


def text_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def copies(template: Referral, count: int, assignees=(None,), start: int = 0) -> None:
    """`count` more referrals like `template` (same state, school and district), written as rows:
    each with its own number, times, urgency and assignee, so that every sort key varies."""
    table = Referral.__table__
    row = dict(db.session.execute(select(table).where(table.c.id == template.id)).mappings().one())
    for name in GENERATED | {"client_token", "consultation_id"}:
        row.pop(name, None)
    urgencies = cycle([Urgency.URGENT, Urgency.CLARIFY] + ([Urgency.ACUTE] if row["phone_call_at"] else []))
    people = cycle(assignees)
    rows = []
    for i in range(start, start + count):
        moment = BASE + timedelta(hours=7 * i)
        rows.append(
            {
                **row,
                "number": f"{row['number'] or 'E'}-{i}",
                "urgency": next(urgencies),
                "submitted_at": row["submitted_at"] and moment,
                "updated_at": moment + timedelta(minutes=i % 5),
                "acknowledge_due_at": row["acknowledge_due_at"] and moment + timedelta(days=i % 4),
                "feedback_due_at": row["feedback_due_at"] and moment + timedelta(days=20 - i % 9),
                "assignee_id": row["assignee_id"] and (next(people) or row["assignee_id"]),
            }
        )
    db.session.execute(insert(table), rows)
    db.session.commit()


def links(html: str) -> dict[str, str]:
    """The pagination's links by their text."""
    nav = re.search(r'<nav aria-label="Seiten der Liste">.*?</nav>', html, re.S)
    found = re.findall(r'<a class="page-link" href="([^"]+)"[^>]*>([^<]+)</a>', nav.group(0)) if nav else []
    return {label: unescape(href) for href, label in found}


def numbers(html: str) -> list[str]:
    """The referral numbers of the list, in the order shown."""
    table = re.search(r"<tbody>.*?</tbody>", html, re.S).group(0)
    return re.findall(r"<tr[^>]*>\s*<td>(?:<a [^>]*>)?([^<\s]+)", table)


def walk(client, url: str, step: str = "Weitere Mitteilungen") -> list[tuple[str, list[str]]]:
    """Every page from `url` on, following `step`: (url, numbers) per page."""
    pages = []
    while url:
        html = text_of(client.get(url))
        pages.append((url, numbers(html)))
        url = links(html).get(step)
        assert len(pages) < 50, "the pages never end"
    return pages


def inbox_order(referral: Referral) -> tuple:
    """PROCESS.md's order of the inbox: open ones first, by urgency, then the next deadline, then id."""
    due = (
        referral.acknowledge_due_at
        if referral.state is State.SUBMITTED
        else referral.feedback_due_at or referral.acknowledge_due_at
    )
    return (referral.state not in OPEN_STATES, referral.urgency.rank, due, referral.id)


@pytest.fixture
def district_inbox(world):
    """60 referrals in the district of `world.asd` in four states, with three assignees; 5 elsewhere."""
    staff = (world.asd.id, world.asd2.id, world.asd_lead.id)
    for state, count in ((State.SUBMITTED, 10), (State.IN_ASSESSMENT, 20), (State.CLOSED, 24)):
        copies(factories.referral_in(state, world.teacher, world.asd), count, staff, start=count)
    copies(factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm), 4)
    acute = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd, urgency=Urgency.ACUTE)
    copies(acute, 2, start=90)
    db.session.expire_all()
    return db.session.scalars(select(Referral).where(Referral.district_id == world.districts["we"].id)).all()


def test_the_inbox_pages_by_cursor_in_its_order_keeping_the_filters(world, as_user, district_inbox):
    asd = as_user(world.asd)
    expected = [r.number for r in sorted(district_inbox, key=inbox_order)]
    assert len(expected) == 60
    pages = walk(asd, "/inbox?state=all")
    assert [len(shown) for _, shown in pages] == [25, 25, 10]
    assert [n for _, shown in pages for n in shown] == expected, "one list, in the inbox's order, nothing twice"
    for url, _ in pages[1:]:
        assert parse_qs(urlsplit(url).query)["state"] == ["all"], "the filter travels with the cursor"
    # And back again from the last page: the same pages, in reverse.
    back = walk(asd, pages[-1][0], step="Zurück")
    assert [shown for _, shown in back] == [shown for _, shown in reversed(pages)]

    first = text_of(asd.get(pages[0][0]))
    assert '<nav aria-label="Seiten der Liste">' in first and "Zurück</span>" in first, "no step back from page 1"
    assert set(links(first)) == {"Weitere Mitteilungen"}
    assert set(links(text_of(asd.get(pages[1][0])))) == {"Zurück", "Weitere Mitteilungen"}
    last = text_of(asd.get(pages[-1][0]))
    assert 'aria-current="page"><span class="page-link">Seite 3 von 3</span>' in last
    assert "60 Mitteilungen" in last and "Weitere Mitteilungen</span>" in last, "no further link on the last page"
    assert links(last)["Zum Anfang"] == "/inbox?state=all"


def test_the_inbox_filters_page_by_cursor_too(world, as_user, district_inbox):
    asd = as_user(world.asd)
    now = datetime(2026, 10, 20, 12)  # the copies' deadlines lie around it: some overdue, some not
    for query, wanted in (
        ("state=open", lambda r: r.state in OPEN_STATES),
        ("state=closed", lambda r: r.state is State.CLOSED),
        (f"state=all&assignee={world.asd2.id}", lambda r: r.assignee_id == world.asd2.id),
    ):
        expected = [r.number for r in sorted(district_inbox, key=inbox_order) if wanted(r)]
        shown = [n for _, page in walk(asd, f"/inbox?{query}") for n in page]
        assert shown == expected, query
    from referral.cases import queries
    from referral.cases.deadlines import overdue

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(queries, "utcnow", lambda: now)
        late = [r.number for r in sorted(district_inbox, key=inbox_order) if overdue(now).applies(r)]
        assert 0 < len(late) < 40
        assert [n for _, page in walk(asd, "/inbox?state=open&overdue=y") for n in page] == late


def test_the_school_list_and_the_coordinators_list_page_by_cursor(world, as_user):
    draft = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    copies(draft, 3)
    copies(factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd), 30)
    copies(factories.referral_in(State.SUBMITTED, world.teacher_other, world.asd), 20, start=40)
    db.session.expire_all()
    everything = db.session.scalars(select(Referral)).all()

    def school_order(r):  # drafts first, then the last change first
        return (r.state is not State.DRAFT, -r.updated_at.timestamp(), -r.id)

    def label(r):
        return r.number or "Entwurf"

    for who, visible in (
        ("teacher", lambda r: r.author_id == world.teacher.id),
        ("school_lead", lambda r: r.state is not State.DRAFT),
    ):
        expected = [label(r) for r in sorted(filter(visible, everything), key=school_order)]
        shown = [n for _, page in walk(as_user(world.users[who]), "/referrals") for n in page]
        assert shown == expected, who

    submitted = sorted((r for r in everything if r.submitted_at), key=lambda r: (r.submitted_at, r.id), reverse=True)
    pages = walk(as_user(world.coordinator), "/coordination/referrals")
    assert [n for _, page in pages for n in page] == [r.number for r in submitted]
    assert "Neueste" in links(text_of(as_user(world.coordinator).get(pages[2][0])))


def test_a_row_changing_between_two_pages_neither_repeats_nor_skips_the_others(world, as_user, district_inbox):
    asd = as_user(world.asd)
    before = sorted(district_inbox, key=inbox_order)
    order_before = [r.number for r in before]
    first = text_of(asd.get("/inbox?state=all"))
    assert numbers(first) == order_before[:PER_PAGE]
    # Meanwhile feedback is given on two referrals of page 1 (among them its last row, where the
    # cursor points): they now sort after every open one.
    in_assessment = [r for r in before[:PER_PAGE] if r.state is State.IN_ASSESSMENT]
    moved = {in_assessment[0].id, in_assessment[-1].id}
    cursor_keys = inbox_order(in_assessment[-1])
    assert in_assessment[-1] is before[PER_PAGE - 1], "the fixture puts one at the end of page 1"
    db.session.execute(
        update(Referral).where(Referral.id.in_(moved)).values(state=State.FEEDBACK_GIVEN, feedback_at=BASE)
    )
    db.session.commit()
    db.session.expire_all()
    after = sorted(
        db.session.scalars(select(Referral).where(Referral.district_id == world.districts["we"].id)), key=inbox_order
    )

    second = numbers(text_of(asd.get(links(first)["Weitere Mitteilungen"])))
    # The page goes on after the keys the last row had when page 1 was shown: no unchanged row of
    # page 1 again (the two changed ones are in their new place, which may be here), and first the row
    # that followed it then (OFFSET would have skipped it, two rows having left page 1).
    unchanged = {r.number for r in before[:PER_PAGE] if r.id not in moved}
    assert not set(second) & unchanged
    assert second[0] == order_before[PER_PAGE]
    assert second == [r.number for r in after if inbox_order(r) > cursor_keys][:PER_PAGE]


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "WyJpbmJveDpvcGVuOjA6OiIsMiwiYSIsMSwiMjAyNi0xMC0wMVQwODowMDowMCIsMTBd.forged-signature",
        "%00%27%20OR%201%3D1",
        "A" * 5000,
    ],
)
def test_a_cursor_the_app_did_not_make_shows_the_first_page(world, as_user, district_inbox, cursor):
    asd = as_user(world.asd)
    first = numbers(text_of(asd.get("/inbox")))
    html = text_of(asd.get(f"/inbox?cursor={cursor}"))
    assert numbers(html) == first and "Seite 1 von" in html


def test_a_cursor_of_another_list_or_other_filters_shows_the_first_page(app, world, as_user, district_inbox):
    asd = as_user(world.asd)
    first = numbers(text_of(asd.get("/inbox?state=all")))
    second = links(text_of(asd.get("/inbox?state=all")))["Weitere Mitteilungen"]
    cursor = parse_qs(urlsplit(second).query)["cursor"][0]
    assert numbers(text_of(asd.get(f"/inbox?state=all&cursor={cursor}"))) != first
    closed = numbers(text_of(asd.get("/inbox?state=closed")))
    assert numbers(text_of(asd.get(f"/inbox?state=closed&cursor={cursor}"))) == closed, "other filters"
    with app.test_request_context():
        # Signed by the app, but for the school's list; and one whose keys are not of the list's types.
        school = encode_cursor("school", Position(2, "a", (0, BASE, 5)))
        odd = encode_cursor("inbox:all:0::", Position(2, "a", ("x", "not a time", 5)))
    assert numbers(text_of(asd.get(f"/inbox?state=all&cursor={school}"))) == first
    assert numbers(text_of(asd.get(f"/inbox?state=all&cursor={odd}"))) == first


def test_the_count_is_bounded(app, world, as_user, monkeypatch):
    copies(factories.referral_in(State.SUBMITTED, world.teacher, world.asd), 7)
    monkeypatch.setattr("referral.pagination.COUNT_UP_TO", 5)
    assert "mehr als 5 Mitteilungen" in text_of(as_user(world.asd).get("/inbox"))
    monkeypatch.setattr("referral.pagination.COUNT_UP_TO", 8)
    assert "8 Mitteilungen" in text_of(as_user(world.asd).get("/inbox"))


def test_a_lead_of_two_districts_sees_both_merged_in_order(world, as_user):
    from referral.accounts.models import Membership, Role

    lead = world.asd_lead
    lead.memberships.append(Membership(role=Role.ASD_LEAD, district=world.districts["hm"]))
    db.session.commit()
    copies(factories.referral_in(State.SUBMITTED, world.teacher, world.asd), 20)
    copies(factories.referral_in(State.IN_ASSESSMENT, world.teacher_b, world.asd_hm), 20, start=50)
    db.session.expire_all()
    everything = sorted(db.session.scalars(select(Referral)), key=inbox_order)
    shown = [n for _, page in walk(as_user(lead), "/inbox") for n in page]
    assert shown == [r.number for r in everything]
    only_hm = walk(as_user(lead), f"/inbox?district={world.districts['hm'].id}")
    assert [n for _, page in only_hm for n in page] == [
        r.number for r in everything if r.district_id == world.districts["hm"].id
    ]


def _cursor_pages(client, url: str) -> list[str]:
    """The first page and the one after it."""
    second = links(text_of(client.get(url)))["Weitere Mitteilungen"]
    return [url, second]


@pytest.mark.parametrize(
    ("who", "urls"),
    [
        ("asd", ["/inbox", "/inbox?state=all", "/inbox?state=closed", "/inbox?state=open&overdue=y"]),
        ("school_lead", ["/referrals"]),
        ("teacher", ["/referrals"]),
        ("coordinator", ["/coordination/referrals"]),
    ],
)
def test_the_same_number_of_queries_for_3_and_for_60_referrals_on_every_page(world, as_user, who, urls):
    """A page costs the same whatever the size of the list: no query per row or per staff member."""
    client = as_user(world.users[who])
    staff = (world.asd.id, world.asd2.id, world.asd_lead.id)
    templates = {
        state: factories.referral_in(state, world.teacher, world.asd, now=BASE - timedelta(days=40))
        for state in (State.SUBMITTED, State.IN_ASSESSMENT, State.CLOSED)
    }

    def counted(url: str) -> int:
        with QueryCounter(db.engine) as queries:
            text_of(client.get(url))
        return queries.count

    few = {url: counted(url) for url in urls}
    for i, template in enumerate(templates.values()):
        copies(template, 40, staff, start=40 * i)
    many = {}
    for url in urls:
        first, second = _cursor_pages(client, url)
        many[url] = counted(first)
        assert counted(second) == many[url], f"{url}: the second page"
    assert many == few


def test_the_referral_page_lists_the_newest_earlier_referrals_about_the_child_in_the_same_queries(world, as_user):
    earlier = factories.referral_in(State.CLOSED, world.teacher, world.asd)
    current = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    assert earlier.child_key == current.child_key
    asd, url = as_user(world.asd), f"/referrals/{current.id}"

    def section() -> tuple[list[str], str, int]:
        with QueryCounter(db.engine) as queries:
            page = text_of(asd.get(url))
        part = page.split('id="fruehere"')[1].split("</section>")[0]
        return re.findall(r'<a href="/referrals/\d+">([^<]+)</a>', part), part, queries.count

    shown, part, few = section()
    assert shown == [earlier.number] and "weitere" not in part
    copies(earlier, 24)  # 25 earlier referrals about the same child
    newest = (
        db.session.execute(
            select(Referral.number)
            .where(Referral.child_key == current.child_key, Referral.id != current.id)
            .order_by(Referral.submitted_at.desc(), Referral.id.desc())
        )
        .scalars()
        .all()
    )
    db.session.commit()  # no read left open while the page writes (SQLite locks the whole file)
    shown, part, many = section()
    assert shown == newest[:20]
    assert "Es gibt weitere, ältere Mitteilungen zu diesem Kind" in part
    assert many == few
