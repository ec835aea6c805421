from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from etl.config import Settings, WarehouseSettings, load_settings
from etl.sandbox import REQUEST_LOG, RESPONSE_HOOK, Dataset, SandboxConfig, make_app
from tests.objectstore import ObjectStore, running_object_store
from tests.postgres import Postgres, create_database, running_postgres


@dataclass
class Sandbox:
    url: str
    dataset: Any
    app: Any
    config: SandboxConfig

    @property
    def requests(self) -> list[Any]:
        return self.app[REQUEST_LOG]


@asynccontextmanager
async def serve(config: SandboxConfig, hook: Any = None) -> AsyncIterator[Sandbox]:
    now_ms = config.now_ms or int(time.time() // 60 * 60_000)
    dataset = Dataset.generate(config.seed, config.scale, now_ms)
    app = make_app(dataset, config)
    app[RESPONSE_HOOK] = hook
    async with TestServer(app, host="127.0.0.1") as server:
        yield Sandbox(str(server.make_url("")).rstrip("/"), dataset, app, config)


@pytest.fixture
def sandbox_factory() -> Callable[..., Any]:
    """`async with sandbox_factory(scale="tiny", fault_rate=0.05, hook=f) as sandbox: ...`

    `hook(request, body) -> body | bytes` rewrites successful API bodies (bad input tests).
    """

    def factory(hook: Any = None, **knobs: Any) -> Any:
        return serve(SandboxConfig(**{"scale": "tiny", **knobs}), hook)

    return factory


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """Settings pointing at a sandbox and a fresh DuckDB file in tmp_path."""

    def make(sandbox: Sandbox, **overrides: Any) -> Settings:
        values = {
            "api.base_url": sandbox.url,
            "warehouse.path": str(tmp_path / "warehouse.duckdb"),
            "limits.requests_per_second": 2000.0,
            "limits.max_in_flight": 8,
            "sync.window_days": 30.0,
            "sync.batch_records": 2000,
            **overrides,
        }
        return load_settings(None, values, {"LD_API_TOKEN": sandbox.config.token})

    return make


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL on 127.0.0.1 with a password, for the whole session; always stopped."""
    password = f"pg-{secrets.token_hex(12)}"
    with running_postgres(password) as server:
        yield server


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStore]:
    """A real S3-compatible server (moto) on 127.0.0.1 for the whole session; always stopped."""
    with running_object_store() as store:
        yield store


@dataclass
class Lake:
    """A new, empty DuckLake: its catalog database, `--db` target, data path and environment.

    With `store`, the data path is `s3://<bucket>/ld/` on that server and `toml` holds the
    `[warehouse]` settings that reach it (the keys travel in `env` only).
    """

    pg: Postgres
    data_path: Path
    store: ObjectStore | None = None
    bucket: str = ""

    @property
    def target(self) -> str:
        return f"ducklake:postgres:{self.pg.conninfo}"

    @property
    def data(self) -> str:
        """`--data-path`: the directory, or the bucket's prefix."""
        return f"s3://{self.bucket}/ld/" if self.store else str(self.data_path)

    @property
    def env(self) -> dict[str, str]:
        keys = self.store.env if self.store else {}
        return {**os.environ, "PGPASSWORD": self.pg.password, **keys}

    @property
    def toml(self) -> str:
        """The `[warehouse]` section every process of this lake needs besides `--db`."""
        if self.store is None:
            return ""
        return (
            f'[warehouse]\ns3_endpoint = "{self.store.endpoint}"\ns3_url_style = "path"\n'
            "s3_use_ssl = false\n"
        )

    def config(self, *warehouse_keys: str) -> str:
        """A `[warehouse]` section: `toml`'s keys and `warehouse_keys` ("key = value")."""
        section = self.toml or "[warehouse]\n"
        return section + "".join(f"{key}\n" for key in warehouse_keys)

    def settings(self) -> WarehouseSettings:
        extra: dict[str, Any] = {}
        if self.store:
            extra = {"s3_endpoint": self.store.endpoint, "s3_url_style": "path",
                     "s3_use_ssl": False}  # fmt: skip
        return WarehouseSettings(path=Path(self.target), data_path=self.data, **extra)


@pytest.fixture
def lake(postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """A DuckLake of this test's own (a fresh catalog database; data under tmp_path).

    The test process itself reads the lake too, with the password in its environment.
    """
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    return Lake(create_database(postgres, f"lake_{uuid.uuid4().hex[:12]}"), tmp_path / "lake-data")


@pytest.fixture
def s3_lake(
    postgres: Postgres,
    object_store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Lake:
    """A DuckLake of this test's own whose data live in a new bucket of the session's store.

    The test process reads it too: the password and the S3 keys are in its environment.
    """
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    for name, value in object_store.env.items():
        monkeypatch.setenv(name, value)
    database = create_database(postgres, f"lake_{uuid.uuid4().hex[:12]}")
    return Lake(database, tmp_path / "unused", object_store, object_store.new_bucket())
