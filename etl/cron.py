"""Standard 5-field cron expressions (`minute hour day month weekday`, UTC) as APScheduler triggers.

APScheduler 3's `CronTrigger.from_crontab` numbers weekdays from Monday = 0, while cron numbers
them from Sunday = 0 (and 7); its issue #286, fixed only in 4.x. `0 6 * * 1-5` must mean
Monday to Friday as it does in a crontab, so the weekday field is translated here into
weekday names, which both agree on.
"""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger

# Cron's weekday numbers: Sunday is 0 and also 7.
_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_PART = re.compile(r"^(?P<range>\*|[0-7a-z]+(?:-[0-7a-z]+)?)(?:/(?P<step>\d+))?$")


def _day(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text) % 7
    if text[:3] in _NAMES and len(text) == 3:
        return _NAMES.index(text)
    raise ValueError(f"weekday {text!r} is not 0-7 or sun..sat")


def _weekdays(field: str) -> str:
    """A cron weekday field as APScheduler weekday names (`1-5` → `mon,tue,wed,thu,fri`)."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        match = _PART.match(part)
        if match is None:
            raise ValueError(f"weekday field {field!r}: cannot read {part!r}")
        span, step = match.group("range"), int(match.group("step") or 1)
        if step < 1:
            raise ValueError(f"weekday field {field!r}: step must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-")
            first, last = _day(low), (7 if high == "7" else _day(high))
            if last < first:
                raise ValueError(f"weekday field {field!r}: range {span!r} runs backwards")
        else:
            first = last = _day(span)
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_NAMES[day] for day in sorted(days))


def cron_trigger(expression: str) -> CronTrigger:
    """A trigger firing at the times of a standard 5-field cron `expression`, in UTC.

    Raises:
        ValueError: the expression is not 5 fields, or a field is out of range.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} has {len(fields)} fields; cron needs 5: minute hour day month "
            "weekday (e.g. '*/30 * * * *')"
        )
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday),
        timezone="UTC",
    )  # fmt: skip
