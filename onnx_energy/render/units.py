"""The one number formatter: SI prefixes for counts and for physical quantities."""

from __future__ import annotations

#: (scale, prefix) from the largest down; counts use those >= 1e3, quantities all of them.
PREFIXES = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"),
            (1e6, "M"), (1e3, "k"))
SUB_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))
_LEGACY_TOP = 1e15  # counts printed with prefixes up to P (the table's historical range)


def si(value: float | None, unit: str = "", *, sig: int | None = None,
       missing: str = "?") -> str:
    """A number with a readable SI prefix.

    Counts (``sig=None``): ``4089184256 -> '4.089 G'``, three decimals from k to P, integers
    and ``.3g`` below 1000. Quantities (``sig=4``): ``0.09311 s -> '93.11 ms'``, ``sig``
    significant digits with sub-unit prefixes down to n. ``None`` prints ``missing``.
    """
    if value is None:
        return missing
    mag = abs(value)
    if sig is None:
        for scale, prefix in PREFIXES:
            if scale <= _LEGACY_TOP and mag >= scale:
                return f"{value / scale:.3f} {prefix}{unit}".rstrip()
        if isinstance(value, float) and not value.is_integer():
            return f"{value:.3g} {unit}".rstrip()
        return f"{int(value)} {unit}".rstrip()
    for factor, prefix in SUB_PREFIXES[:4]:
        if mag >= factor or factor == 1e-9:
            return f"{value / factor:.{sig}g} {prefix}{unit}"
    return f"{value:.{sig}g} {unit}"  # pragma: no cover


def pct(value: float | None, missing: str = "—") -> str:
    """A fraction as a percentage with two decimals: ``0.0123 -> '1.23%'``."""
    return missing if value is None else f"{value * 100:.2f}%"
