-- On a lake the payloads live in Parquet files: zstd for every column of every file written
-- from now on (DuckLake's default is snappy), instead of DuckDB's per-column compression.
CALL warehouse.set_option('parquet_compression', 'zstd');
