"""What an AI response costs: the price table, MODEL_PRICES and the arithmetic (workers/pricing.py)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from workers.pricing import DEFAULT_PRICES, Price, cost_of, parse_prices, price_for, price_table, reply_cost
from workers.settings import Settings


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_cost_is_tokens_over_a_thousand_times_the_prices():
    price = Price(Decimal("0.0015"), Decimal("0.002"))
    assert cost_of(price, 1000, 1000) == Decimal("0.003500")
    assert cost_of(price, 12, 30) == Decimal("0.000078")  # 0.000018 + 0.00006
    assert cost_of(price, 0, 0) == Decimal("0") and cost_of(price, None, None) == Decimal("0")


def test_cost_rounds_half_up_to_six_places():
    price = Price(Decimal("0.0005"), Decimal("0"))
    assert cost_of(price, 1, 0) == Decimal("0.000001")  # 0.0000005 rounds up
    assert cost_of(Price(Decimal("0.0004"), Decimal("0")), 1, 0) == Decimal("0.000000")


def test_defaults_cover_common_models():
    for model in ("gpt-3.5-turbo", "gpt-4", "gpt-4-turbo", "gpt-4o", "gpt-4o-mini"):
        assert model in DEFAULT_PRICES
    assert reply_cost(settings(), "gpt-4", 1000, 1000) == Decimal("0.090000")
    assert reply_cost(settings(), "gpt-4o-mini", 2000, 1000) == Decimal("0.000900")


def test_dated_versions_take_the_longest_known_name():
    table = price_table()
    assert price_for("gpt-4o-mini-2024-07-18", table) == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06", table) == DEFAULT_PRICES["gpt-4o"]
    assert price_for("gpt-4-0613", table) == DEFAULT_PRICES["gpt-4"]
    assert price_for("gpt-4oops", table) is None and price_for(None, table) is None


def test_unknown_models_have_no_cost():
    assert reply_cost(settings(), "llama-3-70b", 100, 100) is None


def test_model_prices_setting_adds_and_overrides():
    configured = settings(model_prices="llama-3-70b=0.0009/0.0009, gpt-4=0.05/0.1")
    assert reply_cost(configured, "llama-3-70b", 1000, 1000) == Decimal("0.001800")
    assert reply_cost(configured, "gpt-4", 100, 100) == Decimal("0.015000")
    assert reply_cost(configured, "gpt-4o", 1000, 0) == Decimal("0.002500")


def test_aliases_are_priced_as_their_target():
    aliased = settings(model_aliases="fast=gpt-4o-mini")
    assert reply_cost(aliased, "fast", 1000, 1000) == reply_cost(aliased, "gpt-4o-mini", 1000, 1000)


@pytest.mark.parametrize("text", ["gpt-4", "gpt-4=0.1", "gpt-4=a/b", "=0.1/0.2", "gpt-4=-1/0.2", "gpt-4=nan/1",
                                  "gpt-4=0.1/inf"])
def test_malformed_model_prices_fail_at_start_up(text):
    with pytest.raises(ValidationError):
        settings(model_prices=text)
    with pytest.raises(ValueError):
        parse_prices(text)


def test_empty_entries_are_ignored():
    assert parse_prices(" , x=1/2 ,") == {"x": Price(Decimal("1"), Decimal("2"))}
