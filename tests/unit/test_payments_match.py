"""`reconciliation.match`, the pure part: each kind of difference, and none for a clean report."""

from __future__ import annotations

from tasks.payments.reconciliation import Booked, Kind, Line, Mismatch, match

BOOKED = {
    "pi_a": Booked("a", "pi_a", "USD", captured=2_000, refunded=500, fee=58),
    "pi_b": Booked("b", "pi_b", "JPY", captured=300, refunded=0, fee=9),
}


def lines(**changes: object) -> list[Line]:
    base = [
        Line("t1", "charge", "pi_a", 2_000, 58, "USD"),
        Line("t2", "refund", "pi_a", 500, 0, "USD"),
        Line("t3", "charge", "pi_b", 300, 9, "JPY"),
    ]
    return [Line(**{**line.__dict__, **changes}) if line.id == "t1" else line for line in base]


def kinds(found: list[Mismatch]) -> list[tuple[Kind, str]]:
    return [(m.kind, m.provider_ref) for m in found]


def test_a_clean_report_matches() -> None:
    assert match(lines(), BOOKED) == []


def test_each_difference_has_its_kind() -> None:
    assert kinds(match(lines(amount=2_100), BOOKED)) == [(Kind.OVER, "pi_a")]
    assert kinds(match(lines(amount=1_900), BOOKED)) == [(Kind.UNDER, "pi_a")]
    assert kinds(match(lines(fee=60), BOOKED)) == [(Kind.FEE, "pi_a")]
    assert kinds(match(lines(currency="EUR"), BOOKED)) == [(Kind.CURRENCY, "pi_a")]
    assert kinds(match(lines(provider_ref="pi_z"), BOOKED)) == [
        (Kind.UNEXPECTED, "pi_z"),
        (Kind.UNDER, "pi_a"),  # pi_a's charge is gone, its refund is left
    ]
    assert kinds(match(lines()[1:], BOOKED)) == [(Kind.UNDER, "pi_a")]
    assert kinds(match(lines()[2:], BOOKED)) == [(Kind.MISSING, "pi_a")]
    twice = [*lines(), Line("t9", "charge", "pi_b", 300, 9, "JPY")]
    (dup,) = match(twice, BOOKED)
    assert (dup.kind, dup.provider_ref, dup.expected, dup.actual) == (
        Kind.DUPLICATE,
        "pi_b",
        300,
        600,
    )


def test_refunds_are_compared_on_their_own() -> None:
    more = [*lines(), Line("t4", "refund", "pi_a", 100, 0, "USD")]
    (over,) = match(more, BOOKED)
    assert (over.kind, over.detail, over.expected, over.actual) == (Kind.OVER, "refunds", 500, 600)
