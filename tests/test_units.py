"""The one number formatter: prefixes for counts and quantities, shares."""

from __future__ import annotations

import pytest

from onnx_energy.render.units import share, si


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (999, "999"), (1000, "1.000 k"), (4_089_184_256, "4.089 G"),
    (1.5e15, "1.500 P"), (2.3e18, "2.300 E"), (4.5e21, "4.500 Z"), (7e24, "7.000 Y"),
    (1.234e30, "1.234e+30"), (2.5, "2.5"), (-2048, "-2.048 k"),
])
def test_counts_use_prefixes_up_to_yotta_then_scientific(value: float, text: str) -> None:
    assert si(value) == text


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0.09311, "s", "93.11 ms"), (3e-10, "J", "0.3 nJ"), (5.5, "W", "5.5 W"),
    (1234.5, "J", "1.234 kJ"), (2.5e6, "J", "2.5 MJ"), (1234.5, "s", "1234 s"),
    (123456.0, "s", "123456 s"), (0.0, "J", "0 J"), (1e30, "J", "1.000e+30 J"),
])
def test_quantities(value: float, unit: str, text: str) -> None:
    assert si(value, unit, sig=4) == text


def test_missing_is_never_a_zero() -> None:
    assert si(None) == "?"
    assert si(None, "J", sig=4, missing="—") == "—"


def test_shares_never_round_a_real_share_to_nothing() -> None:
    assert share(0.9512) == "95.1%"
    assert share(1.0) == "100.0%"
    assert share(0.0) == "0.0%"
    assert share(0.0001) == "<0.1%"
    assert share(None) == ""


@pytest.mark.parametrize(("value", "text"), [
    (32_848, "32.85 k"), (131_328, "131.3 k"), (2_212_160, "2.212 M"), (999_960, "1.000 M"),
    (999, "999"), (99_996, "100.0 k"),
])
def test_compact_counts_keep_four_significant_digits(value: int, text: str) -> None:
    assert si(value, compact=True) == text


def test_rounding_up_moves_to_the_next_prefix() -> None:
    assert si(999_999_600) == "1.000 G"
