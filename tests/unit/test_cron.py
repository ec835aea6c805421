"""Cron expressions mean what they mean in a crontab, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from etl.cron import cron_trigger

SATURDAY = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def next_after(expression: str, moment: datetime) -> datetime:
    return cron_trigger(expression).get_next_fire_time(None, moment)


def test_weekdays_1_to_5_are_monday_to_friday_as_in_crontab():
    fire = next_after("0 6 * * 1-5", SATURDAY)
    assert (fire, fire.strftime("%a")) == (datetime(2026, 12, 7, 6, 0, tzinfo=UTC), "Mon")


@pytest.mark.parametrize("sunday", ["0", "7", "sun"])
def test_sunday_is_0_or_7(sunday):
    assert next_after(f"0 6 * * {sunday}", SATURDAY).strftime("%a") == "Sun"


def test_times_are_utc():
    berlin_afternoon = datetime(2026, 12, 5, 15, 0, tzinfo=timezone(timedelta(hours=1)))
    assert next_after("0 6 * * *", berlin_afternoon) == datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * * *", "4 fields"),
        ("61 * * * *", "59"),
        ("0 0 * * 8", "'8'"),
        ("0 0 * * 5-1", "backwards"),
    ],
)
def test_a_bad_expression_names_its_problem(expression, problem):
    with pytest.raises(ValueError, match=problem):
        cron_trigger(expression)
