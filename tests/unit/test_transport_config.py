"""The TLS rule, checked before anything connects: https beyond loopback, always verified."""

from __future__ import annotations

import pytest

from etl.config import load_settings
from etl.errors import ConfigError

ENV = {"LD_API_TOKEN": "api-00000000-1111-2222-3333-444444444444"}


@pytest.mark.parametrize(
    "url", ["http://ld.example.com", "http://192.0.2.7:8080", "http://[2001:db8::1]"]
)
def test_plain_http_to_another_machine_is_refused_naming_the_key(url):
    with pytest.raises(ConfigError, match=r"api\.base_url: .*plain http.*allow_insecure_http"):
        load_settings(None, {"api.base_url": url}, ENV)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:80", "http://127.9.9.9"]
)
def test_plain_http_to_loopback_is_allowed(url):
    assert load_settings(None, {"api.base_url": url}, ENV).api.base_url == url


def test_allow_insecure_http_overrides_the_rule():
    settings = load_settings(
        None, {"api.base_url": "http://ld.example.com", "api.allow_insecure_http": True}, ENV
    )
    assert settings.api.allow_insecure_http


def test_a_missing_ca_bundle_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"api\.ca_bundle: .* is not a file"):
        load_settings(None, {"api.ca_bundle": str(tmp_path / "nope.pem")}, ENV)


def test_there_is_no_switch_to_turn_certificate_verification_off():
    with pytest.raises(ConfigError, match=r"api\.verify_ssl: unknown key"):
        load_settings(None, {"api.verify_ssl": False}, ENV)
