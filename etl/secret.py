"""A value that must never be printed: the API token."""

from __future__ import annotations


class Secret:
    """Holds a secret string; every way of printing it shows `***`.

    Only `reveal()` returns the value, and the only caller is the HTTP client building the
    `Authorization` header. Equality is deliberately not defined so that a secret never ends
    up in an assertion message either.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)
