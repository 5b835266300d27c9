"""UTC time as the API reads and counts it: ISO 8601 texts as Unix seconds, and the UTC day's bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DAY_S = 86400.0


def unix_seconds(text: str) -> float:
    """An ISO 8601 date or date/time as Unix seconds (UTC when it names no zone; ``Z`` allowed);
    ``ValueError`` when it is not one."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def next_midnight(now: float) -> float:
    """The next 00:00 UTC after ``now`` (Unix seconds)."""
    day = datetime.fromtimestamp(now, UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def day_start(now: float) -> float:
    """The 00:00 UTC that began ``now``'s day."""
    return next_midnight(now) - DAY_S
