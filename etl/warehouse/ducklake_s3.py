"""A DuckLake's data path on S3 or any S3-compatible store (MinIO, R2, Ceph, moto).

Credentials never pass through the config, a flag or a SQL text: the secret DuckDB uses is
created with the aws extension's credential chain, which reads them itself. With
`warehouse.s3_credentials = "env"` (the default) that chain is the standard variables only
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`), checked here
first so that a missing key is one clear line; with `"credential_chain"` it is DuckDB's whole
chain (variables, ~/.aws files, SSO, STS web identity, the instance's role). Where the store
is (`s3_endpoint`, `s3_region`, `s3_url_style`, `s3_use_ssl`) are ordinary settings. The
variables' values are also what every error and log line of a lake is scrubbed of.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import duckdb

from etl.config import WarehouseSettings
from etl.errors import ConfigError

KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SECRET_NAME = "etl_s3"


def is_s3(data_path: str | None) -> bool:
    """Whether a data path is on object storage (DuckDB's s3:// and its aliases)."""
    return bool(data_path) and str(data_path).lower().startswith(("s3://", "s3a://", "s3n://"))


def key_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The S3 keys present in the environment: what must never be printed."""
    env = os.environ if environ is None else environ
    return [env[name] for name in KEY_VARIABLES if env.get(name)]


def credentials_found(
    settings: WarehouseSettings, environ: Mapping[str, str] | None = None
) -> str | None:
    """Where the keys come from, said without them; None: none are set for `env`."""
    env = os.environ if environ is None else environ
    if settings.s3_credentials == "credential_chain":
        return "DuckDB's aws credential chain (resolved when the store is first used)"
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        token = " and AWS_SESSION_TOKEN" if env.get("AWS_SESSION_TOKEN") else ""
        return f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY{token} in the environment"
    return None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _endpoint(settings: WarehouseSettings) -> tuple[str | None, bool | None]:
    """`s3_endpoint` as DuckDB wants it (host[:port]) and the TLS its scheme implies."""
    endpoint, use_ssl = settings.s3_endpoint, settings.s3_use_ssl
    if endpoint is None:
        return None, use_ssl
    for scheme, secure in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            endpoint = endpoint[len(scheme) :]
            use_ssl = secure if use_ssl is None else use_ssl
    return endpoint.rstrip("/"), use_ssl


def create_secret(
    conn: duckdb.DuckDBPyConnection,
    settings: WarehouseSettings,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Give `conn` (httpfs and aws loaded) the S3 secret for the lake's data path.

    Raises:
        ConfigError: `env` credentials asked for and not set (no value is ever named).
    """
    env = os.environ if environ is None else environ
    options = ["TYPE s3", "PROVIDER credential_chain"]
    if settings.s3_credentials == "env":
        if credentials_found(settings, env) is None:
            raise ConfigError(
                "warehouse.data_path is on S3 but no credentials were found: set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
                'temporary ones), or warehouse.s3_credentials = "credential_chain"'
            )
        options.append("CHAIN 'env'")
    region = settings.s3_region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    options.append(f"REGION {_literal(region or 'us-east-1')}")
    endpoint, use_ssl = _endpoint(settings)
    if endpoint:
        options.append(f"ENDPOINT {_literal(endpoint)}")
    if settings.s3_url_style:
        options.append(f"URL_STYLE {_literal(settings.s3_url_style)}")
    if use_ssl is not None:
        options.append(f"USE_SSL {'true' if use_ssl else 'false'}")
    conn.execute(f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} ({', '.join(options)})")
    # httpfs copies the AWS variables into settings as it loads, where `duckdb_settings()`
    # (an `etl sql` away) would print them; the secret holds what it needs.
    for setting in ("s3_access_key_id", "s3_secret_access_key", "s3_session_token"):
        conn.execute(f"SET {setting} = ''")
