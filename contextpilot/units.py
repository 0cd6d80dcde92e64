"""One way to write sizes and durations, for every message the library, the CLI and the app show.

Sizes are decimal, as Ollama writes them (1 GB = 10^9 bytes, its ``format.HumanBytes``): one
decimal below 10, none above, so a download, a free disk and a machine's memory read alike
("4.1 GB download", "84 GB free", "17 GB of memory"). Rounded, not truncated: an estimate
of what a model needs is never shown smaller than it is. Durations are short words ("4 s",
"3 min", "1 h 5 min").
"""

from __future__ import annotations

from typing import Optional

_UNITS = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3))


def format_size(n: Optional[float]) -> str:
    """Bytes in decimal units, rounded (a need of 43.9 GB reads "44 GB", not less).

    >>> format_size(4_113_301_824), format_size(523_000_000), format_size(84_600_000_000)
    ('4.1 GB', '523 MB', '85 GB')
    >>> format_size(512), format_size(1_100), format_size(9_990_000_000), format_size(None)
    ('512 B', '1.1 KB', '10 GB', 'unknown')
    >>> format_size(999_700_000), format_size(24 * 2**30)  # never "1000 MB"; 24 GiB
    ('1.0 GB', '26 GB')
    """
    if n is None:
        return "unknown"
    value = float(n)
    for i, (unit, scale) in enumerate(_UNITS):
        if abs(value) >= scale:
            scaled = value / scale
            text = f"{scaled:.1f}" if abs(scaled) < 9.95 else f"{scaled:.0f}"
            if text in ("1000", "-1000") and i > 0:  # rounds up into the next unit
                return f"{scaled / 1000:.1f} {_UNITS[i - 1][0]}"
            return f"{text} {unit}"
    return f"{int(value)} B"


def format_speed(bytes_per_second: Optional[float]) -> str:
    """``'12 MB/s'``; '' when unknown.

    >>> format_speed(12_500_000), format_speed(None)
    ('12 MB/s', '')
    """
    return "" if bytes_per_second is None else f"{format_size(bytes_per_second)}/s"


def format_duration(seconds: Optional[float]) -> str:
    """Seconds in short words, to the second under a minute, else to the minute.

    >>> format_duration(4.2), format_duration(125), format_duration(3900), format_duration(7200)
    ('4 s', '2 min', '1 h 5 min', '2 h')
    >>> format_duration(None), format_duration(-3)
    ('', '0 s')
    """
    if seconds is None:
        return ""
    total = max(0, int(round(seconds)))
    if total < 60:
        return f"{total} s"
    minutes = int(round(total / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


__all__ = ["format_duration", "format_size", "format_speed"]
