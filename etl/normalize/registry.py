"""Every warehouse table and every stream's normalizer, gathered from the stream families.

A family is one module that declares its streams' record specs, its tables (`schemas.Table`)
and `FAMILY` (`family.Family`: its tables and its normalizer per stream); this module only
gathers the families, so adding one is one line in `FAMILIES`. The first streams' tables are
declared in `schemas.py` and form the `CORE` family. The merge, the duplicate check and the
tests read the dicts below; nothing about a table is declared twice.
"""

from __future__ import annotations

import polars as pl

from etl.config import Stream
from etl.normalize import flags, schemas, teams
from etl.normalize.deployments import normalize_deployments
from etl.normalize.discovery import normalize_environments, normalize_projects
from etl.normalize.family import Family, Normalizer
from etl.normalize.releases import normalize_pipelines, normalize_policies, normalize_progressions

CORE = Family(
    "core",
    schemas.CORE_TABLES,
    {
        Stream.PROJECTS: normalize_projects,
        Stream.ENVIRONMENTS: normalize_environments,
        Stream.DEPLOYMENTS: normalize_deployments,
        Stream.RELEASE_PIPELINES: normalize_pipelines,
        Stream.RELEASE_PROGRESSIONS: normalize_progressions,
        Stream.RELEASE_POLICIES: normalize_policies,
    },
)

FAMILIES: tuple[Family, ...] = (CORE, flags.FAMILY, teams.FAMILY)

TABLES: dict[str, dict[str, pl.DataType]] = {
    table.name: dict(table.columns) for family in FAMILIES for table in family.tables
}
KEYS: dict[str, tuple[str, ...]] = {
    table.name: table.key for family in FAMILIES for table in family.tables
}
NORMALIZERS: dict[Stream, Normalizer] = {
    stream: normalize for family in FAMILIES for stream, normalize in family.normalizers.items()
}
# Child table → (its parent's key columns, parent table): replaced wholesale with the parent.
CHILD_OF: dict[str, tuple[tuple[str, ...], str]] = {
    t.name: (KEYS[t.parent], t.parent) for f in FAMILIES for t in f.tables if t.parent
}
# Which table a completed listing of each stream sweeps.
SWEPT_TABLE: dict[Stream, str] = {
    t.swept_by: t.name for f in FAMILIES for t in f.tables if t.swept_by is not None
}
# Parent table → [(child table, join columns)]: children of a deleted parent are deleted too.
CASCADES: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
for _family in FAMILIES:
    for _table in _family.tables:
        if _table.deleted_with:
            CASCADES.setdefault(_table.deleted_with, []).append(
                (_table.name, KEYS[_table.deleted_with])
            )


def _check() -> None:
    """Fail at import, not mid-sync, on a registry that contradicts itself."""
    names = [table.name for family in FAMILIES for table in family.tables]
    doubled = {name for name in names if names.count(name) > 1}
    if doubled:
        raise AssertionError(f"tables declared twice: {sorted(doubled)}")
    for family in FAMILIES:
        for table in family.tables:
            for other in (table.parent, table.deleted_with):
                if other is not None and other not in KEYS:
                    raise AssertionError(f"{table.name}: no such table {other!r}")


_check()
