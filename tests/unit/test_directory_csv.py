"""The directory CSV parser: every bad line reported by its number, nothing raised, dates in the
tenant's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.directory.csv_import import parse_directory_csv

LONDON = ZoneInfo("Europe/London")
HEADER = "extension,person,email,department,cost_centre,site,valid_from,valid_to"


def test_good_rows_are_read_with_days_at_local_midnight() -> None:
    text = (
        f"{HEADER}\n"
        "201,Ann Archer,ann@acme.example,Sales,CC-10,London,2025-07-01,\n"
        '202,"Bert, Jr.",,Support,,Leeds,,\n'
    )
    preview = parse_directory_csv(text, LONDON)
    assert preview.ok, preview.problems
    ann, bert = preview.entries
    assert (ann.extension, ann.person, ann.department, ann.cost_centre, ann.site, ann.line) == (
        "201", "Ann Archer", "Sales", "CC-10", "London", 2,
    )  # fmt: skip
    # Midnight BST on 1 July is 23:00 UTC on 30 June.
    assert ann.valid_from == datetime(2025, 6, 30, 23, 0, tzinfo=UTC)
    assert (bert.person, bert.valid_from, bert.line) == ("Bert, Jr.", None, 3)


def test_each_bad_line_is_reported_with_its_number_and_good_lines_kept() -> None:
    text = "\n".join(
        [
            "Extension,Person,Department",  # names are case-insensitive
            "201,Ann,Sales",  # 2 good
            ",Nobody,Sales",  # 3 no extension
            "203,,Sales",  # 4 no person
            "204,Dee",  # 5 too few fields
            "205,Eve,Sales,extra",  # 6 too many fields
            "",  # 7 blank lines are skipped
            "2 06,Fay,Sales",  # 8 a space in an extension
            "207,Gus,Sales",  # 9 good
        ]
    )
    preview = parse_directory_csv(text, LONDON)
    assert [p.line for p in preview.problems] == [3, 4, 5, 6, 8]
    assert [e.line for e in preview.entries] == [2, 9]
    assert "extension is empty" in preview.problems[0].message
    assert "2 fields where the header has 3" in preview.problems[2].message


def test_a_quoted_field_over_two_lines_counts_from_the_line_it_starts_on() -> None:
    text = 'extension,person,site\n201,"Ann\nArcher",HQ\n,Bad,HQ\n'
    preview = parse_directory_csv(text, LONDON)
    assert [e.line for e in preview.entries] == [2]
    assert [p.line for p in preview.problems] == [4]


def test_bad_dates_and_reversed_periods_are_line_errors() -> None:
    text = (
        "extension,person,valid_from,valid_to\n"
        "201,Ann,2025-13-01,\n"
        "202,Bob,2025-03-01T09:00:00,\n"
        "203,Cy,2025-03-02,2025-03-01\n"
        "204,Di,2025-03-01T09:00:00+01:00,2025-04-01\n"
    )
    preview = parse_directory_csv(text, LONDON)
    messages = {p.line: p.message for p in preview.problems}
    assert set(messages) == {2, 3, 4}
    assert "not a day" in messages[2]
    assert "no UTC offset" in messages[3]
    assert "not after" in messages[4]
    assert preview.entries[0].valid_from == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_overlapping_rows_for_one_extension_refuse_the_later_line() -> None:
    text = (
        "extension,person,valid_from,valid_to\n"
        "201,Ann,2024-01-01,2025-01-01\n"
        "201,Bob,2025-01-01,\n"  # starts when Ann's ends: fine
        "201,Cy,2025-06-01,\n"  # inside Bob's open period
    )
    preview = parse_directory_csv(text, LONDON)
    assert [p.line for p in preview.problems] == [4]
    assert "overlaps line 3" in preview.problems[0].message
    assert [e.person for e in preview.entries] == ["Ann", "Bob"]


def test_header_problems_are_line_one() -> None:
    for text, words in [
        ("", "empty"),
        ("extension,name\n201,Ann\n", "lacks person"),
        ("extension,person,phone\n", "unknown column 'phone'"),
        ("extension,person,site,site\n", "appears twice"),
    ]:
        preview = parse_directory_csv(text, LONDON)
        assert [(p.line, words in p.message) for p in preview.problems] == [(1, True)], text
        assert not preview.entries


def test_a_byte_order_mark_is_ignored() -> None:
    preview = parse_directory_csv("\ufeffextension,person\n201,Ann\n", LONDON)
    assert preview.ok and preview.entries[0].extension == "201"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    preview = parse_directory_csv(text, LONDON)
    for problem in preview.problems:
        assert problem.line >= 1 and problem.message
    lines = {e.line for e in preview.entries}
    assert not lines & {p.line for p in preview.problems}


_GOOD_NAME = st.text(alphabet="abcdefghij ", min_size=1, max_size=12).filter(str.strip)
# Each fails in one way under the header "extension,person,email".
_BAD_ROW = st.sampled_from(
    [",Nobody,", "301,,", "3 02,Sp Ace,", "303,Too,Many", "304", "305,Ok,x@", "306,a,b,c"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_GOOD_NAME.map(lambda n: ("good", n)),
                          _BAD_ROW.map(lambda r: ("bad", r))), max_size=30))  # fmt: skip
def test_every_bad_line_is_reported_and_every_good_line_kept(
    rows: list[tuple[str, str]],
) -> None:
    # Header has three columns so each bad row fails in exactly one way; good rows get their own
    # extension so none overlaps another.
    lines = ["extension,person,email"]
    for index, (kind, value) in enumerate(rows):
        if kind == "good":
            lines.append(f"{1000 + index},{value.strip()},")
        else:
            lines.append(value)
    preview = parse_directory_csv("\n".join(lines) + "\n", LONDON)
    expected_bad = {i + 2 for i, (kind, _v) in enumerate(rows) if kind == "bad"}
    expected_good = {i + 2 for i, (kind, _v) in enumerate(rows) if kind == "good"}
    assert {p.line for p in preview.problems} == expected_bad
    assert {e.line for e in preview.entries} == expected_good


def test_a_sip_address_is_an_extension_and_other_at_signs_are_not() -> None:
    """A Lync / Skype for Business call's extension is its user's SIP address."""
    text = "extension,person\nalice@example.com,Alice\nbob@,Bob\na@b@c,Cy\n@x,Di\n"
    preview = parse_directory_csv(text, LONDON)
    assert [e.extension for e in preview.entries] == ["alice@example.com"]
    assert [p.line for p in preview.problems] == [3, 4, 5]
    assert all("characters an extension cannot have" in p.message for p in preview.problems)
