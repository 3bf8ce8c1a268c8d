"""Card numbers are refused at the door: only provider tokens are accepted."""

from __future__ import annotations

import re

from tasks.payments.errors import CardDataRefusedError

# 13-19 digits, optionally grouped by single spaces or dashes, standing on their own: not part
# of a longer number, nor of a word or an identifier. A provider's or our own ids (`pi_01a2…`,
# hex) hold long runs of digits; counted, 4 % of webhook bodies carried a Luhn-valid one.
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z_])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z_])")


def luhn_valid(digits: str) -> bool:
    """Whether the digit string passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def contains_card_number(body: bytes | str) -> bool:
    """Whether a Luhn-valid 13-19 digit number appears anywhere in the text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    for match in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def refuse_card_numbers(body: bytes | str, *, field: str = "body") -> None:
    """Raise a 422 naming `field` (that never echoes the number) when the text carries a card
    number."""
    if contains_card_number(body):
        raise CardDataRefusedError(
            "the request carries what looks like a card number; send a provider token",
            field=field,
        )
