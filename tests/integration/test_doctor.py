"""`etl doctor` end to end: a real process, the sandbox, real warehouse files."""

from __future__ import annotations

import socket

import duckdb
import orjson

from tests.integration.test_cli import SOME_TOKEN, env_with, etl


def rows(out: str) -> dict[str, str]:
    """check name → "outcome | detail | fix", from `--format json` (the error line after it)."""
    checks = orjson.loads(out[: out.rindex("]") + 1])
    return {c["name"]: " | ".join((c["outcome"], c["detail"], c["fix"])) for c in checks}


async def doctor(tmp_path, base_url: str, token: str | None, *extra: str) -> tuple[int, str]:
    return await etl(
        "doctor", "--db", str(tmp_path / "w.duckdb"), "--base-url", base_url, "--format",
        "json", *extra, env=env_with(token),
    )  # fmt: skip


async def test_doctor_passes_every_check_against_the_sandbox_without_printing_the_token(
    sandbox_factory, tmp_path
):
    async with sandbox_factory() as sandbox:
        code, out = await doctor(tmp_path, sandbox.url, sandbox.config.token)
    assert code == 0, out
    assert sandbox.config.token not in out
    checks = rows(out)
    routes = ("deployments", "releases", "release pipelines", "release policies", "flag events")
    expected = [
        *("config", "token", "API reachable", "warehouse writable", "warehouse schema"),
        *("disk space", *(f"payments: {route} (beta)" for route in routes)),
        *("payments: flags", "payments: flag statuses"),  # the flags scope, not beta
    ]
    for name in expected:
        assert checks[name].startswith("ok"), (name, out)


async def test_a_rejected_token_fails_with_a_fix_and_exit_1(sandbox_factory, tmp_path):
    async with sandbox_factory() as sandbox:
        code, out = await doctor(tmp_path, sandbox.url, SOME_TOKEN)
    assert code == 1
    assert SOME_TOKEN not in out and "Traceback" not in out
    assert rows(out)["API reachable"].startswith("FAIL")
    assert "the token was rejected" in out
    assert "etl: error: doctor: some checks failed" in out


async def test_a_missing_token_fails_and_skips_the_api_checks(tmp_path):
    code, out = await doctor(tmp_path, "http://127.0.0.1:9", None)
    assert code == 1
    checks = rows(out)
    assert checks["token"].startswith("FAIL") and "export LD_API_TOKEN=api-" in checks["token"]
    assert checks["API reachable"].startswith("skipped")
    assert checks["warehouse writable"].startswith("ok")


async def test_an_unreachable_api_fails_with_a_fix(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code, out = await doctor(tmp_path, f"http://127.0.0.1:{port}", SOME_TOKEN)
    assert code == 1
    assert rows(out)["API reachable"].startswith("FAIL")
    assert "check [api] base_url" in out


async def test_a_configured_project_the_token_cannot_read_fails_naming_it(
    sandbox_factory, tmp_path
):
    config = tmp_path / "c.toml"
    config.write_text('[scope]\nprojects = ["payments", "no-such-project"]\n')
    async with sandbox_factory() as sandbox:
        code, out = await doctor(
            tmp_path, sandbox.url, sandbox.config.token, "--config", str(config)
        )
    assert code == 1
    checks = rows(out)
    assert checks["project payments"].startswith("ok")
    assert checks["project no-such-project"].startswith("FAIL")
    assert "check the key in config.toml [scope]" in checks["project no-such-project"]


async def test_the_accounts_routes_are_checked_once_whatever_the_number_of_projects(
    sandbox_factory, tmp_path
):
    async with sandbox_factory() as sandbox:
        keys = [project["key"] for project in sandbox.dataset.projects][:2]
        config = tmp_path / "c.toml"
        config.write_text(f"[scope]\nprojects = {orjson.dumps(keys).decode()}\n")
        code, out = await doctor(
            tmp_path, sandbox.url, sandbox.config.token, "--config", str(config)
        )
    assert code == 0, out
    names = [check["name"] for check in orjson.loads(out[: out.rindex("]") + 1])]
    for account_route in ("applications", "teams", "insight groups (beta)"):
        assert names.count(account_route) == 1, (account_route, names)
    for key in keys:
        assert f"{key}: deployments (beta)" in names


async def test_an_unwritable_warehouse_path_fails(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out = await etl(
        "doctor", "--db", str(blocker / "w.duckdb"), "--base-url", "http://127.0.0.1:9",
        "--format", "json", env=env_with(None),
    )  # fmt: skip
    assert code == 1
    assert rows(out)["warehouse writable"].startswith("FAIL")


async def test_a_file_that_is_not_an_etl_warehouse_fails_the_schema_check(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE TABLE unrelated (x INT)")
    code, out = await doctor(tmp_path, "http://127.0.0.1:9", None)
    assert code == 1
    assert rows(out)["warehouse schema"].startswith("FAIL | ")
    assert "is not an etl warehouse" in out


async def test_the_table_names_each_check_and_the_fix_of_a_failure(tmp_path):
    code, out = await etl(
        "doctor", "--db", str(tmp_path / "w.duckdb"), "--base-url", "http://127.0.0.1:9",
        env=env_with(None),
    )  # fmt: skip
    assert code == 1
    assert "etl doctor" in out and "FAIL" in out and "export LD_API_TOKEN=api-" in out
    assert out.strip().endswith("etl: error: doctor: some checks failed (see the fix column)")
