"""Display helpers with no Django: a tiny sparkline for check-in history, plain numbers."""

WIDTH, HEIGHT, PAD = 160, 40, 3


def sparkline_points(values, width=WIDTH, height=HEIGHT, pad=PAD):
    """Map a series of numbers (oldest first) to "x,y" pairs inside a width x height box."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return ""
    if len(values) == 1:
        values = values * 2
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / (len(values) - 1)
    points = []
    for i, v in enumerate(values):
        x = pad + i * step
        y = height - pad - (v - low) / span * (height - 2 * pad)
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def plain_number(value):
    """A decimal as people write it: 12.5000 -> "12.5", 40.0000 -> "40", never "4E+1"."""
    if value is None:
        return ""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
