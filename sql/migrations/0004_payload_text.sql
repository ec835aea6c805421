-- API payloads are stored as text (VARCHAR), no longer as DuckDB's JSON type. The JSON type
-- re-parses every value as it is inserted: 1,000 deployments carrying ~40 KB of metadata each
-- (33 MB of JSON) ran out of memory in one insert even with a 256 MB cache, where VARCHAR
-- needed ~37 MB, and the parse cost ~8% of a large sync's merges. Every value was parsed by
-- the normalizer already, and DuckDB's JSON functions and operators (->, ->>, json_extract…)
-- read VARCHAR the same way. Only our own small ledger columns keep the JSON type.
ALTER TABLE projects ALTER COLUMN _raw TYPE VARCHAR;
ALTER TABLE environments ALTER COLUMN _raw TYPE VARCHAR;
ALTER TABLE deployments ALTER COLUMN metadata TYPE VARCHAR;
ALTER TABLE deployments ALTER COLUMN _raw TYPE VARCHAR;
ALTER TABLE pull_requests ALTER COLUMN _raw TYPE VARCHAR;
ALTER TABLE release_pipelines ALTER COLUMN _raw TYPE VARCHAR;
ALTER TABLE release_pipeline_phases ALTER COLUMN audiences TYPE VARCHAR;
ALTER TABLE release_progressions ALTER COLUMN _raw TYPE VARCHAR;
ALTER TABLE release_policies ALTER COLUMN _raw TYPE VARCHAR;
ALTER TABLE rejected_records ALTER COLUMN _raw TYPE VARCHAR;
