-- Which process runs a run: several syncs may write one warehouse at once (a DuckLake), so a
-- starting run marks as abandoned only the `running` runs whose process is known to be gone
-- (etl/state.py: start_run), never a neighbour's live run.
ALTER TABLE etl_runs ADD COLUMN host VARCHAR;
ALTER TABLE etl_runs ADD COLUMN pid BIGINT;
