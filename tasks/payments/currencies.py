"""ISO 4217 currencies: exponents from the ledger's table, with per-provider overrides."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnExpressionArgument, ScalarSelect, column, select, table
from sqlalchemy.orm import Session

from tasks.payments.errors import UnknownCurrencyError

_CURRENCIES = table("pay_currencies", column("code"), column("exponent"))


def exponent(session: Session, currency: str) -> int:
    """The currency's minor-unit exponent (JPY 0, USD 2, KWD 3, CLF 4)."""
    row = session.execute(
        select(_CURRENCIES.c.exponent).where(_CURRENCIES.c.code == currency)
    ).first()
    if row is None:
        raise UnknownCurrencyError(f"{currency!r} is not an ISO 4217 code", field="currency")
    return int(row[0])


def exponent_of(currency: ColumnExpressionArgument[str]) -> ScalarSelect[int]:
    """`exponent`'s look-up as a column, to read it in the same query as `currency`."""
    return select(_CURRENCIES.c.exponent).where(_CURRENCIES.c.code == currency).scalar_subquery()


def to_provider(
    amount: int, currency: str, *, iso_exponent: int, overrides: Mapping[str, int]
) -> int:
    """The amount in the provider's minor units (Stripe counts ISK in hundredths)."""
    shift = overrides.get(currency, iso_exponent) - iso_exponent
    return amount * 10**shift if shift >= 0 else _exact_down(amount, -shift)


def from_provider(
    amount: int, currency: str, *, iso_exponent: int, overrides: Mapping[str, int]
) -> int:
    """The provider's amount in ISO minor units (refused if it is not whole)."""
    shift = overrides.get(currency, iso_exponent) - iso_exponent
    return _exact_down(amount, shift) if shift >= 0 else amount * 10**-shift


def _exact_down(amount: int, places: int) -> int:
    factor: int = 10**places
    whole, rest = divmod(amount, factor)
    if rest:
        raise UnknownCurrencyError(f"{amount} is not a whole amount", field="amount")
    return whole
