"""What a reply cost: per-model prices per 1K input and output tokens, and the arithmetic.

Prices are USD per 1,000 tokens. `MODEL_PRICES` ("model=input/output,...") adds models or
overrides the defaults below. A dated model name ("gpt-4o-2024-08-06") takes the price of the
longest known name it starts with; a model with no price has no cost (None), never a guess.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from workers.settings import Settings

COST_PLACES = Decimal("0.000001")  # messages.cost is Numeric(12, 6)
PER_TOKENS = 1000


class Price(NamedTuple):
    input_per_1k: Decimal
    output_per_1k: Decimal


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-3.5-turbo": Price(Decimal("0.0005"), Decimal("0.0015")),
    "gpt-4": Price(Decimal("0.03"), Decimal("0.06")),
    "gpt-4-32k": Price(Decimal("0.06"), Decimal("0.12")),
    "gpt-4-turbo": Price(Decimal("0.01"), Decimal("0.03")),
    "gpt-4o": Price(Decimal("0.0025"), Decimal("0.01")),
    "gpt-4o-mini": Price(Decimal("0.00015"), Decimal("0.0006")),
    "gpt-4.1": Price(Decimal("0.002"), Decimal("0.008")),
    "gpt-4.1-mini": Price(Decimal("0.0004"), Decimal("0.0016")),
    "gpt-4.1-nano": Price(Decimal("0.0001"), Decimal("0.0004")),
    "o1": Price(Decimal("0.015"), Decimal("0.06")),
    "o3-mini": Price(Decimal("0.0011"), Decimal("0.0044")),
}


def parse_prices(text: str) -> dict[str, Price]:
    """Parse "model=input/output,..." (USD per 1K tokens); ValueError on a malformed entry."""
    prices: dict[str, Price] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, pair = item.partition("=")
        given, _, taken = pair.partition("/")
        try:
            price = Price(Decimal(given.strip()), Decimal(taken.strip()))
            valid = bool(name.strip()) and all(p.is_finite() and p >= 0 for p in price)
        except InvalidOperation:
            valid = False
        if not valid:
            raise ValueError(f"MODEL_PRICES entry {item!r} is not model=input/output (USD per 1K tokens)")
        prices[name.strip()] = price
    return prices


def price_table(overrides: str = "") -> dict[str, Price]:
    """The default prices with the configured ones on top."""
    return {**DEFAULT_PRICES, **parse_prices(overrides)}


def price_for(model: str | None, table: dict[str, Price]) -> Price | None:
    """The price of `model`: its own entry, else the longest entry it is a dated version of."""
    if not model:
        return None
    if model in table:
        return table[model]
    versions = [name for name in table if model.startswith(name + "-")]
    return table[max(versions, key=len)] if versions else None


def cost_of(price: Price, tokens_in: int | None, tokens_out: int | None) -> Decimal:
    """USD for the tokens, rounded half-up to six places."""
    total = (Decimal(tokens_in or 0) * price.input_per_1k + Decimal(tokens_out or 0) * price.output_per_1k)
    return (total / PER_TOKENS).quantize(COST_PLACES, rounding=ROUND_HALF_UP)


def reply_cost(settings: Settings, model: str | None, tokens_in: int | None,
               tokens_out: int | None) -> Decimal | None:
    """The cost of a reply by `model` (an alias is priced as its target); None when unpriced."""
    table = price_table(settings.model_prices)
    price = price_for(model, table) or price_for(settings.aliases().get(model or ""), table)
    return cost_of(price, tokens_in, tokens_out) if price is not None else None
