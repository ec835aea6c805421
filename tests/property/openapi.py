"""Hypothesis strategies for LaunchDarkly's payloads, built from its own OpenAPI schemas.

`payloads("DeploymentRep")` draws records that `ld-openapi.json` allows, leaning on the edges:
optional keys missing or `null` (LaunchDarkly leaves unset fields null), empty arrays,
any Unicode, very long strings, integers at ±9,007,199,254,740,991 (the largest any JSON
producer can promise exactly), free-form objects. A small builder rather than
hypothesis-jsonschema: these are OpenAPI 3.0 schemas (`$ref` into `components`, recursion,
`format`s), and the edges above need steering either way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

SPEC = json.loads((Path(__file__).parents[1] / "data" / "ld-openapi.json").read_text())
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
SAFE_INT = 2**53 - 1
MAX_DEPTH = 6

texts = st.one_of(
    st.text(max_size=12),
    st.text(min_size=1, max_size=40),
    # Long strings, built by repetition: drawing 10,000 characters one by one is slow.
    st.tuples(st.text(min_size=1, max_size=6), st.integers(300, 2_000)).map(lambda t: t[0] * t[1]),
    st.sampled_from(["", " ", "null", "\u0000", "é", "😀", "\u202e", "a\nb", '"quoted"']),
)
integers = st.one_of(
    st.integers(-SAFE_INT, SAFE_INT),
    st.sampled_from([0, 1, -1, SAFE_INT, -SAFE_INT]),
)
datetimes = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)).map(
    lambda moment: moment.isoformat(timespec="milliseconds")
)
json_scalars = st.one_of(
    st.none(), st.booleans(), integers, st.floats(allow_nan=False, allow_infinity=False), texts
)
free_form = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def strategy(
    schema: dict[str, Any], depth: int = 0, required: frozenset[str] = frozenset()
) -> st.SearchStrategy[Any]:
    """Values `schema` allows; `required` adds keys the loader requires to the schema's own."""
    if "$ref" in schema:
        return _named(schema["$ref"].rsplit("/", 1)[-1], depth, required)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return st.one_of(*(strategy(option, depth + 1) for option in schema[combinator]))
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in map(_resolve, schema["allOf"]):
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return strategy(merged, depth, required)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "string":
        return datetimes if schema.get("format") == "date-time" else texts
    if kind == "integer":
        return integers
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False) | integers
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        if depth >= MAX_DEPTH:
            return st.just([])
        return st.lists(strategy(schema.get("items", {}), depth + 1), max_size=3)
    if kind == "object":
        return _object(schema, depth, required)
    return free_form


def _object(schema: dict[str, Any], depth: int, required: frozenset[str]) -> st.SearchStrategy[Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    if not properties:
        if isinstance(extra, dict) and depth < MAX_DEPTH:
            return st.dictionaries(st.text(max_size=10), strategy(extra, depth + 1), max_size=2)
        return st.dictionaries(st.text(max_size=8), free_form, max_size=3)
    must = set(schema.get("required", [])) | required
    fixed = {name: strategy(sub, depth + 1) for name, sub in properties.items() if name in must}
    if depth >= MAX_DEPTH:
        return st.fixed_dictionaries(fixed)
    optional = {
        name: st.none() | strategy(sub, depth + 1)
        for name, sub in properties.items()
        if name not in must
    }
    return st.fixed_dictionaries(fixed, optional=optional)


@cache
def _named(name: str, depth: int, required: frozenset[str]) -> st.SearchStrategy[Any]:
    return st.deferred(lambda: strategy(SCHEMAS[name], depth, required))


def payloads(name: str, required: tuple[str, ...] = ()) -> st.SearchStrategy[dict[str, Any]]:
    """Records of schema `name`, with `required` present (and not null) as well."""
    return strategy(SCHEMAS[name], 0, frozenset(required))
