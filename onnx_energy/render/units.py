"""The one number formatter: SI prefixes for counts and for physical quantities."""

from __future__ import annotations

#: (scale, prefix) from the largest down: counts use them from k, quantities from k too
#: (seconds excepted: "1.2 ks" reads badly, so seconds stay plain).
PREFIXES = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"),
            (1e6, "M"), (1e3, "k"))
SUB_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))
#: Beyond the largest prefix (Y), numbers switch to scientific notation.
SCIENTIFIC_FROM = 1e27


def si(value: float | None, unit: str = "", *, sig: int | None = None,
       missing: str = "?", compact: bool = False) -> str:
    """A number with a readable SI prefix.

    Counts (``sig=None``): ``4089184256 -> '4.089 G'``, three decimals from k to Y (with
    ``compact``, four significant digits: ``32848 -> '32.85 k'``, for tables), ``1.234e+30``
    beyond, integers and ``.3g`` below 1000. Quantities (``sig=4``): ``0.09311 s ->
    '93.11 ms'``, ``1234.5 J -> '1.234 kJ'``, ``sig`` significant digits with sub-unit
    prefixes down to n. ``None`` prints ``missing``.
    """
    if value is None:
        return missing
    mag = abs(value)
    if mag >= SCIENTIFIC_FROM:
        return f"{value:.3e} {unit}".rstrip() if sig is None else f"{value:.{sig - 1}e} {unit}"
    if sig is None:
        for i, (scale, prefix) in enumerate(PREFIXES):
            if mag >= scale:
                text = _count(value / scale, compact)
                if abs(float(text)) >= 1000 and i > 0:  # 999.9996 k rounds up: 1.000 M
                    scale, prefix = PREFIXES[i - 1]
                    text = _count(value / scale, compact)
                return f"{text} {prefix}{unit}".rstrip()
        if isinstance(value, float) and not value.is_integer():
            return f"{value:.3g} {unit}".rstrip()
        return f"{int(value)} {unit}".rstrip()
    if mag == 0:
        return f"0 {unit}"
    if mag >= 1e3:
        if unit == "s":
            return f"{value:.0f} s" if mag >= 10 ** sig else f"{value:.{sig}g} s"
        for scale, prefix in PREFIXES:
            if mag >= scale:
                return f"{value / scale:.{sig}g} {prefix}{unit}"
    for factor, prefix in SUB_PREFIXES:
        if mag >= factor or factor == SUB_PREFIXES[-1][0]:
            return f"{value / factor:.{sig}g} {prefix}{unit}"
    return f"{value:.{sig}g} {unit}"  # pragma: no cover


def _count(scaled: float, compact: bool) -> str:
    """A prefixed count: three decimals, or four significant digits when ``compact``."""
    if not compact:
        return f"{scaled:.3f}"
    mag = abs(scaled)
    return f"{scaled:.{1 if mag >= 99.995 else 2 if mag >= 9.9995 else 3}f}"


def pct(value: float | None, missing: str = "—") -> str:
    """A fraction as a percentage with two decimals: ``0.0123 -> '1.23%'``."""
    return missing if value is None else f"{value * 100:.2f}%"


def share(value: float | None, missing: str = "") -> str:
    """A fraction as a table share with one decimal: ``0.9512 -> '95.1%'``; tiny non-zero
    shares print as ``<0.1%`` so that they never read as nothing."""
    if value is None:
        return missing
    if 0 < value < 0.0005:
        return "<0.1%"
    return f"{value * 100:.1f}%"
