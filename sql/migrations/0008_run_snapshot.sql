-- On a DuckLake, the snapshot each run that succeeded or was partial ended on, and whether no
-- run at all was in progress in it (`whole`): readers attach at the latest whole one
-- (etl/warehouse/ducklake_pin.py). A DuckDB file publishes whole runs by copying itself
-- instead; there both stay NULL.
ALTER TABLE etl_runs ADD COLUMN snapshot_id BIGINT;
ALTER TABLE etl_runs ADD COLUMN snapshot_whole BOOLEAN;
