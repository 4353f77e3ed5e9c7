"""Cells of the files this app writes and reads (pure: no Django).

A cell that a spreadsheet would read as a formula (it starts with = + - @, a tab or a carriage
return) is written with a leading quote, so opening an export never runs what someone typed in a
title. Reading drops that quote again, so an exported file imports as it was."""

from decimal import Decimal, InvalidOperation

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe(value):
    """A value as a cell: text, numbers as they are, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    # A leading quote is doubled too, so that reading it back gives the text as typed.
    return "'" + text if text[:1] in (*FORMULA_STARTS, "'") else text


def number(value):
    """A decimal without trailing zeros: 10.5000 -> "10.5", 100.0000 -> "100"."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return text


def unquote(text):
    """A cell as read: the defusing quote of ``safe`` removed, spaces trimmed."""
    text = (text or "").strip()
    if text[:1] == "'" and text[1:2] and text[1:2] in (*FORMULA_STARTS, "'"):
        return text[1:].strip()
    return text


def parse_decimal(text):
    """``(value, error)``: "" is None; "1,200" and "12.5%" are refused with a clear message."""
    text = (text or "").strip()
    if text == "":
        return None, None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, f"“{text[:40]}” is not a number (write it like 1200 or 12.5)."
    if not value.is_finite():
        return None, f"“{text[:40]}” is not a number (write it like 1200 or 12.5)."
    return value, None
