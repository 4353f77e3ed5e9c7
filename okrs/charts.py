"""A tiny sparkline for check-in history: points for an inline SVG polyline. No Django."""

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
