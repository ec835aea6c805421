from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.config import Stream, load_settings, size_bytes
from etl.errors import ConfigError

TOKEN = "api-0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
ENV = {"LD_API_TOKEN": TOKEN}
REPO_CONFIG = Path(__file__).parents[2] / "config.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_checked_in_config_is_valid_and_lists_every_stream():
    settings = load_settings(REPO_CONFIG, {}, ENV)
    assert settings.sync.streams == list(Stream)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"sync\.page_sise: unknown key"):
        load_settings(None, {"sync.page_sise": 10}, ENV)


def test_out_of_range_value_names_the_key(tmp_path):
    path = write(tmp_path, "[sync]\npage_size = 500\n")
    with pytest.raises(ConfigError, match=r"config.toml: sync\.page_size: .*100"):
        load_settings(path, {}, ENV)


def test_invalid_toml_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[sync\n"), {}, ENV)


def test_missing_token_names_the_environment_variable():
    with pytest.raises(ConfigError, match="LD_API_TOKEN is not set"):
        load_settings(None, {}, {})


def test_token_variable_can_be_renamed(tmp_path):
    path = write(tmp_path, '[api]\ntoken_env = "MY_TOKEN"\n')
    settings = load_settings(path, {}, {"MY_TOKEN": TOKEN})
    assert settings.token.reveal() == TOKEN


def test_token_never_appears_in_repr_or_dump():
    settings = load_settings(None, {}, ENV)
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.model_dump())


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, '[warehouse]\npath = "a.duckdb"\n')
    settings = load_settings(path, {"warehouse.path": "b.duckdb"}, ENV)
    assert settings.warehouse.path == Path("b.duckdb")


def test_since_accepts_a_date_and_means_utc_midnight():
    settings = load_settings(None, {}, ENV, since="2026-01-31")
    assert settings.since == datetime(2026, 1, 31, tzinfo=UTC)


def test_since_rejects_garbage_naming_the_flag():
    with pytest.raises(ConfigError, match=r"--since: 'last tuesday'"):
        load_settings(None, {}, ENV, since="last tuesday")


def test_base_url_with_credentials_is_rejected():
    with pytest.raises(ConfigError, match=r"api\.base_url"):
        load_settings(None, {"api.base_url": "https://user:pw@app.launchdarkly.com"}, ENV)


def test_checkpoint_threshold_must_be_a_size():
    with pytest.raises(ConfigError, match=r"warehouse\.checkpoint_threshold"):
        load_settings(None, {"warehouse.checkpoint_threshold": "lots"}, ENV)


def test_sizes_are_read_as_duckdb_reads_them():
    assert size_bytes("64MB") == 64_000_000
    assert size_bytes("1.5 GiB") == 3 * 2**29
    assert size_bytes("512KiB") == 2**19


@pytest.mark.parametrize("token", ["api-short-token", "api-0f1e2d3c 4b5a-4968-8776"])
def test_a_token_too_short_to_be_real_is_refused_without_printing_it(token):
    with pytest.raises(ConfigError, match="does not hold an access token") as caught:
        load_settings(None, {}, {"LD_API_TOKEN": token})
    assert token not in str(caught.value)


def test_a_one_letter_token_is_refused_at_start_up():
    with pytest.raises(ConfigError, match="LD_API_TOKEN does not hold an access token: 1 char"):
        load_settings(None, {}, {"LD_API_TOKEN": "t"})


def test_an_sdk_key_is_refused_as_not_an_access_token():
    sdk_key = "sdk-0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
    with pytest.raises(ConfigError, match=r"holds an SDK key \(sdk-…\)") as caught:
        load_settings(None, {}, {"LD_API_TOKEN": sdk_key})
    assert sdk_key not in str(caught.value)


def test_schedule_takes_a_cron_expression_or_an_interval_not_both():
    assert load_settings(None, {"schedule.cron": "*/30 * * * *"}, ENV).schedule.cron
    with pytest.raises(ConfigError, match="cron or every_minutes, not both"):
        load_settings(None, {"schedule.cron": "0 * * * *", "schedule.every_minutes": 5}, ENV)


def test_a_cron_expression_without_five_fields_is_named():
    with pytest.raises(ConfigError, match=r"schedule\.cron: .*4 fields; cron needs 5"):
        load_settings(None, {"schedule.cron": "* * * *"}, ENV)


def test_a_ducklake_conninfo_with_a_password_is_refused_without_echoing_it():
    target = "ducklake:postgres:dbname=ld host=db user=etl password=hunter2"
    with pytest.raises(ConfigError, match="must not hold a password") as error:
        load_settings(None, {"warehouse.path": target}, ENV)
    assert "hunter2" not in str(error.value)


def test_a_ducklake_conninfo_must_be_key_value_not_a_url():
    target = "ducklake:postgres:postgresql://etl@db:5432/ld"
    with pytest.raises(ConfigError, match="key=value form"):
        load_settings(None, {"warehouse.path": target}, ENV)


def test_a_ducklake_target_keeps_its_conninfo_and_data_path():
    target = "ducklake:postgres:dbname=ld host=127.0.0.1 port=5432 user=etl"
    settings = load_settings(
        None, {"warehouse.path": target, "warehouse.data_path": "s3://bucket/lake/"}, ENV
    )
    assert str(settings.warehouse.path) == target
    assert settings.warehouse.data_path == "s3://bucket/lake/"


def test_lake_maintenance_times_are_a_cron_expression_checked_on_load():
    assert load_settings(None, {"lake.maintain_cron": "0 3 * * *"}, ENV).lake.maintain_cron
    with pytest.raises(ConfigError, match=r"lake\.maintain_cron: .*4 fields; cron needs 5"):
        load_settings(None, {"lake.maintain_cron": "0 3 * *"}, ENV)


def test_lake_maintenance_times_on_a_duckdb_file_are_refused_before_the_schedule_starts():
    from etl.schedule import maintenance_trigger_for

    settings = load_settings(None, {"lake.maintain_cron": "0 3 * * *"}, ENV)
    with pytest.raises(ConfigError, match=r"maintain_cron: .* is a DuckDB file"):
        maintenance_trigger_for(settings)
