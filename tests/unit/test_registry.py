"""The stream registry: every stream is normalized, read and stored exactly once."""

from __future__ import annotations

from etl.config import Stream
from etl.extract.registry import EXTRACTS
from etl.normalize.registry import FAMILIES, NORMALIZERS, SWEPT_TABLE, TABLES

DISCOVERY = {Stream.PROJECTS, Stream.ENVIRONMENTS}


def test_every_stream_has_a_normalizer():
    assert set(NORMALIZERS) == set(Stream)


def test_every_stream_but_discovery_is_read_by_exactly_one_family():
    for stream in set(Stream) - DISCOVERY:
        readers = [extract for extract in EXTRACTS if stream in extract.streams]
        assert len(readers) == 1, stream


def test_a_swept_table_can_be_soft_deleted():
    for stream, table in SWEPT_TABLE.items():
        assert "_deleted_at" in TABLES[table], (stream, table)


def test_each_table_belongs_to_one_family():
    names = [table.name for family in FAMILIES for table in family.tables]
    assert sorted(names) == sorted(set(names)) == sorted(TABLES)
