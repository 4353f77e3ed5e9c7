"""KPI health, with no Django: a value against two bands, read in the KPI's direction."""

HEALTHY, WARNING, UNHEALTHY = "healthy", "warning", "unhealthy"
RANK = {"": 0, HEALTHY: 0, WARNING: 1, UNHEALTHY: 2}


def health_of(value, *, direction, healthy_at, warning_at):
    """"healthy", "warning" or "unhealthy"; "" without a value or without bands. Higher is
    better: healthy at ``healthy_at`` or above, warning from ``warning_at``, unhealthy below it.
    Lower is better: the same, read downwards. A threshold belongs to the better band."""
    if value is None or healthy_at is None or warning_at is None:
        return ""
    sign = 1 if direction == "higher" else -1
    if sign * value >= sign * healthy_at:
        return HEALTHY
    if sign * value >= sign * warning_at:
        return WARNING
    return UNHEALTHY


def left_healthy_band(before, after):
    """Whether a new reading took the KPI further out of its healthy band: into warning from
    healthy (or from no health), or into unhealthy from anything better."""
    return RANK[after] > RANK[before]


def band_sentence(*, direction, healthy_at, warning_at, unit=""):
    """The bands in words: "Healthy at 99.5% or more; warning from 99%; below that unhealthy"."""
    if healthy_at is None or warning_at is None:
        return "No bands yet."
    u = unit if unit in ("%",) else (f" {unit}" if unit else "")
    more, less = ("or more", "below") if direction == "higher" else ("or less", "above")
    if healthy_at == warning_at:
        return f"Healthy at {plain(healthy_at)}{u} {more}; unhealthy {less}."
    return (f"Healthy at {plain(healthy_at)}{u} {more}; warning from {plain(warning_at)}{u}; "
            f"unhealthy {less}.")


def plain(value):
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
