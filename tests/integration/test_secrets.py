"""Secrets: no command lets the token (or a database password) out.

Every command runs with a canary token — syncs at DEBUG in both log formats, a sync whose
token the server rejects, a scheduled run, status, sql over every ledger column, the HTML
report, the Parquet export, doctor (with the canary and with a rejected token) — then every
byte they printed, every file they left (the warehouse and its write-ahead log, reports,
exports) and every text value in the warehouse is searched for the canaries: zero hits.

A new command is one more line in `COMMANDS`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
from aiohttp.test_utils import TestServer

from etl.sandbox import Dataset, SandboxConfig, make_app

CANARY_TOKEN = "api-c4a7a7e0-0000-4000-8000-canary000001"
REJECTED_TOKEN = "api-c4a7a7e0-0000-4000-8000-canary000002"
CANARY_PASSWORD = "pg-canary-password-0003"
CANARIES = (CANARY_TOKEN, REJECTED_TOKEN, CANARY_PASSWORD)


@dataclass(frozen=True)
class Command:
    """One `etl` invocation: its arguments (`{db}`, `{url}`, `{out}` filled in) and the
    exit codes it may end with."""

    args: tuple[str, ...]
    exits: tuple[int, ...] = (0,)
    token: str = CANARY_TOKEN


COMMANDS = [
    Command(("sync", "--db", "{db}", "--base-url", "{url}", "--log-format", "text")),
    Command(("sync", "--db", "{db}", "--base-url", "{url}", "--since", "2025-06-01",
             "--log-format", "json")),
    Command(("sync", "--db", "{db}", "--base-url", "{url}"), exits=(1,), token=REJECTED_TOKEN),
    Command(("schedule", "--db", "{db}", "--base-url", "{url}", "--every", "60", "--runs", "1")),
    Command(("status", "--db", "{db}", "--limit", "50")),
    Command(("sql", "--db", "{db}", "--format", "json", "SELECT * FROM etl_runs")),
    Command(("sql", "--db", "{db}", "--format", "csv", "SELECT * FROM etl_runs")),
    Command(("sql", "--db", "{db}", "SELECT * FROM etl_runs")),
    Command(("report", "--db", "{db}", "--out", "{out}/report.html")),
    Command(("export", "--db", "{db}", "--format", "parquet", "--out", "{out}/parquet")),
    Command(("doctor", "--db", "{db}", "--base-url", "{url}", "--format", "json"), exits=(0, 1)),
    Command(("doctor", "--db", "{db}", "--base-url", "{url}"), exits=(0, 1, 2),
            token=REJECTED_TOKEN),
]  # fmt: skip


async def run(command: Command, values: dict[str, str], workdir: Path) -> tuple[int, bytes]:
    env = {
        **os.environ,
        "LD_API_TOKEN": command.token,
        "PGPASSWORD": CANARY_PASSWORD,
        "ETL_PG_PASSWORD": CANARY_PASSWORD,
    }
    args = [arg.format(**values) for arg in command.args]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl", *args, env=env, cwd=workdir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out + err


def text_values_holding(db: Path, needle: str) -> list[str]:
    """`table.column` of every text value in the warehouse that contains `needle`."""
    hits: list[str] = []
    with duckdb.connect(str(db), read_only=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON') OR data_type LIKE '%[]'"
        ).fetchall()
        for table, column in columns:
            (found,) = conn.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::VARCHAR LIKE ?',
                [f"%{needle}%"],
            ).fetchone()
            if found:
                hits.append(f"{table}.{column}")
    return hits


async def test_no_command_lets_a_canary_out(tmp_path):
    config = SandboxConfig(scale="tiny", token=CANARY_TOKEN, now_ms=int(time.time() // 60 * 60_000))
    dataset = Dataset.generate(config.seed, config.scale, config.anchor_ms())
    (tmp_path / "config.toml").write_text('[log]\nlevel = "DEBUG"\n')
    out = tmp_path / "out"
    out.mkdir()
    db = tmp_path / "warehouse.duckdb"
    printed: list[tuple[str, bytes]] = []
    async with TestServer(make_app(dataset, config), host="127.0.0.1") as server:
        values = {"db": str(db), "url": str(server.make_url("")).rstrip("/"), "out": str(out)}
        for command in COMMANDS:
            code, output = await run(command, values, tmp_path)
            assert code in command.exits, (command.args, output.decode()[-2000:])
            printed.append((" ".join(command.args), output))

    leaks = [
        f"output of `etl {name}`"
        for name, output in printed
        for c in CANARIES
        if c.encode() in output
    ]
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".duckdb" for path in files)
    with duckdb.connect(str(db), read_only=True) as conn:  # every stream's rows were searched
        for table in ("deployments", "flags", "flag_statuses", "flag_events"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
    assert (out / "report.html").is_file()
    assert (out / "parquet" / "manifest.json").is_file()
    leaks += [
        f"file {path.relative_to(tmp_path)}"
        for path in files
        for c in CANARIES
        if c.encode() in path.read_bytes()
    ]
    leaks += [f"warehouse value {hit}" for c in CANARIES for hit in text_values_holding(db, c)]
    assert leaks == []
    # The searched warehouse holds every stream's rows, the ownership and Insights ones too.
    with duckdb.connect(str(db), read_only=True) as conn:
        for table in ("applications", "teams", "insight_groups", "insight_scores",
                      "pull_request_lead_times"):  # fmt: skip
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
    # The search itself works: the rejected token's run is in the ledger, the sync logged.
    assert b"etl: error: " in printed[2][1] and b"401" in printed[2][1]


CANARY_KEY_ID = "AKIACANARY0000000004"
CANARY_S3_SECRET = "s3-canary-secret-0000000000000000000005"
LAKE_COMMANDS = [
    ("sync", "--db", "{db}", "--data-path", "{data}", "--base-url", "{url}", "--log-format",
     "text"),
    ("sync", "--db", "{db}", "--base-url", "{url}", "--since", "2025-06-01", "--log-format",
     "json"),
    ("status", "--db", "{db}", "--limit", "50"),
    ("sql", "--db", "{db}", "--format", "csv",
     "SELECT * FROM etl_runs, duckdb_settings()"),
    ("report", "--db", "{db}", "--out", "{out}/report.html"),
    ("export", "--db", "{db}", "--out", "{out}/parquet"),
    ("doctor", "--db", "{db}", "--base-url", "{url}", "--format", "json"),
    ("lake", "snapshot", "--db", "{db}"),
    ("lake", "maintain", "--db", "{db}", "--keep-days", "0"),
]  # fmt: skip


async def test_no_lake_command_lets_an_s3_key_out(postgres, object_store, tmp_path):
    """The same search on a DuckLake on S3 run with canary keys (moto takes any keys)."""
    from tests.objectstore import ObjectStore
    from tests.postgres import create_database, dump_database

    pg = create_database(postgres, "secrets_lake")
    store = ObjectStore(object_store.host, object_store.port, CANARY_KEY_ID, CANARY_S3_SECRET)
    bucket = store.new_bucket()
    config = SandboxConfig(scale="tiny", token=CANARY_TOKEN, now_ms=int(time.time() // 60 * 60_000))
    dataset = Dataset.generate(config.seed, config.scale, config.anchor_ms())
    (tmp_path / "config.toml").write_text(
        '[log]\nlevel = "DEBUG"\n[warehouse]\n'
        f'data_path = "s3://{bucket}/ld/"\ns3_endpoint = "{store.endpoint}"\n'
        's3_url_style = "path"\ns3_use_ssl = false\n'
    )
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "LD_API_TOKEN": CANARY_TOKEN, "PGPASSWORD": pg.password, **store.env}
    printed: list[tuple[str, bytes]] = []
    async with TestServer(make_app(dataset, config), host="127.0.0.1") as server:
        values = {
            "db": f"ducklake:postgres:{pg.conninfo}", "data": f"s3://{bucket}/ld/",
            "url": str(server.make_url("")).rstrip("/"), "out": str(out),
        }  # fmt: skip
        for args in LAKE_COMMANDS:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "etl", *(arg.format(**values) for arg in args), env=env,
                cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            stdout, stderr = await process.communicate()
            assert process.returncode == 0, (args, (stdout + stderr).decode()[-2000:])
            printed.append((" ".join(args), stdout + stderr))
    canaries = (CANARY_KEY_ID, CANARY_S3_SECRET, CANARY_TOKEN)
    leaks = [f"output of `etl {name}`" for name, text in printed for c in canaries
             if c.encode() in text]  # fmt: skip
    leaks += [
        f"file {path.relative_to(tmp_path)}"
        for path in tmp_path.rglob("*")
        if path.is_file()
        for c in canaries
        if c.encode() in path.read_bytes()
    ]
    objects = store.objects(bucket)
    assert any(key.endswith(".parquet") for key in objects)
    leaks += [f"object {key}" for key in objects for c in canaries
              if c.encode() in store.read(bucket, key)]  # fmt: skip
    dump = dump_database(pg)
    leaks += [f"catalog dump holds {c[:8]}…" for c in canaries if c.encode() in dump]
    assert leaks == []
    assert b"snapshot " in printed[7][1]  # the search itself works: commands printed
