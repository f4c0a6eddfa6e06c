"""Settings: defaults, TOML, environment over TOML, clear errors."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from ratel.config import (
    _PARSERS,
    DEFAULT_DATABASE_URL,
    DEVELOPMENT_SECRET,
    SETTING_NAMES,
    Environment,
    LogFormat,
    Settings,
    SettingsError,
    env_name,
    load_settings,
)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ratel.toml"
    path.write_text(text)
    return str(path)


def test_every_setting_has_a_parser() -> None:
    assert set(_PARSERS) == set(SETTING_NAMES)


def test_defaults_run_everything_embedded() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///./ratel.db"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.http_url == "http://127.0.0.1:8080"
    assert (settings.radius_host, settings.radius_auth_port, settings.radius_acct_port) == (
        "127.0.0.1",
        1812,
        1813,
    )
    assert (settings.diameter_host, settings.diameter_port) == ("127.0.0.1", 3868)
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.log_format is LogFormat.JSON
    assert settings.restricted_locations == {"AEROSPACE", "MARITIME"}
    assert settings.charging_validity_seconds == 3600


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.http_port = 1  # type: ignore[misc]


def test_toml_flat_and_in_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environment = "production"
        secret = "s3cret-from-file"
        restricted_locations = ["aerospace", "Maritime", "ARCTIC"]

        [database]
        url = "postgresql+asyncpg://ratel@db/ratel"
        pool_size = 40
        max_overflow = 0

        [http]
        host = "0.0.0.0"
        port = 9000

        [log]
        level = "debug"
        format = "text"

        [housekeeping]
        interval = 2.5
        """,
    )
    settings = load_settings(path, env={})
    assert settings.database_url == "postgresql+asyncpg://ratel@db/ratel"
    assert (settings.database_pool_size, settings.database_max_overflow) == (40, 0)
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 9000)
    assert settings.environment is Environment.PRODUCTION
    assert (settings.log_level, settings.log_format) == ("DEBUG", LogFormat.TEXT)
    assert settings.housekeeping_interval == 2.5
    assert settings.restricted_locations == {"AEROSPACE", "MARITIME", "ARCTIC"}


def test_the_file_may_be_named_by_ratel_config(tmp_path: Path) -> None:
    path = write(tmp_path, "http_port = 9100\n")
    assert load_settings(env={"RATEL_CONFIG": path}).http_port == 9100


def test_environment_overrides_toml(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nport = 9000\nhost = "10.0.0.1"\n')
    settings = load_settings(
        path,
        env={
            "RATEL_HTTP_PORT": "9001",
            "RATEL_DATABASE_URL": "sqlite+aiosqlite:////var/lib/ratel/ratel.db",
            "RATEL_RESTRICTED_LOCATIONS": "aerospace, maritime ,",
            "RATEL_RESTRICTED_SERVICES": "DATA,voice",
            "RATEL_CHARGING_VALIDITY_SECONDS": "600",
            "RATEL_LOG_FORMAT": "TEXT",
            "RATEL_ENVIRONMENT": "production",
            "RATEL_SECRET": "a-long-random-value",
        },
    )
    assert settings.http_port == 9001
    assert settings.http_host == "10.0.0.1"  # from the file, not overridden
    assert settings.database_url == "sqlite+aiosqlite:////var/lib/ratel/ratel.db"
    assert settings.restricted_locations == {"AEROSPACE", "MARITIME"}
    assert settings.restricted_services == {"data", "voice"}
    assert settings.charging_validity_seconds == 600
    assert settings.log_format is LogFormat.TEXT


def test_every_setting_has_its_variable() -> None:
    assert [env_name(f.name) for f in fields(Settings)][:3] == [
        "RATEL_DATABASE_URL",
        "RATEL_ENVIRONMENT",
        "RATEL_SECRET",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RATEL_HTTP_PORT", "eighty", "whole number"),
        ("RATEL_HTTP_PORT", "70000", "0-65535"),
        ("RATEL_DIAMETER_PORT", "-1", "0-65535"),
        ("RATEL_LOG_LEVEL", "loud", "DEBUG"),
        ("RATEL_LOG_FORMAT", "xml", "json or text"),
        ("RATEL_ENVIRONMENT", "staging", "development or production"),
        ("RATEL_HOUSEKEEPING_INTERVAL", "0", "positive"),
        ("RATEL_HOUSEKEEPING_INTERVAL", "soon", "seconds"),
        ("RATEL_CHARGING_VALIDITY_SECONDS", "0", "at least 1"),
        ("RATEL_DATABASE_URL", "mysql://x/y", "sqlite+aiosqlite://"),
        ("RATEL_SECRET", "  ", "must not be empty"),
        ("RATEL_HTTP_HOST", "", "must not be empty"),
        ("RATEL_DIAMETER_MAX_IN_FLIGHT", "0", "at least 1"),
        ("RATEL_DIAMETER_WATCHDOG", "0", "positive"),
        ("RATEL_DIAMETER_VENDOR_ID", "-1", "IANA enterprise number"),
        ("RATEL_DIAMETER_VENDOR_ID", "4294967296", "IANA enterprise number"),
        ("RATEL_DATABASE_POOL_SIZE", "0", "at least 1"),
        ("RATEL_DATABASE_MAX_OVERFLOW", "-1", "at least 0"),
    ],
)
def test_bad_environment_values_name_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert says in message
    if value.strip():
        assert repr(value) in message


def test_bad_toml_values_name_the_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nport = "x"\n')
    with pytest.raises(SettingsError, match=r"ratel\.toml: http\.port: expected a whole number"):
        load_settings(path, env={})


def test_a_toml_boolean_is_not_a_port(tmp_path: Path) -> None:
    path = write(tmp_path, "http_port = true\n")
    with pytest.raises(SettingsError, match="http_port"):
        load_settings(path, env={})


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nprot = 1\n")
    with pytest.raises(SettingsError, match=r"http\.prot: unknown setting"):
        load_settings(path, env={})


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(str(tmp_path / "nope.toml"), env={})
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(write(tmp_path, "http_port = \n"), env={})


def test_unrelated_environment_variables_are_ignored() -> None:
    assert load_settings(env={"RATEL_NOT_A_SETTING": "x", "HOME": "/root"}) == Settings()


def test_a_validity_too_short_for_the_radius_interim_interval_is_refused() -> None:
    """Tcc supervision releases a session silent for a grant's validity plus
    the grace: shorter than the interval between two Interim-Updates, every
    live RADIUS session was released between them (an xDR per interval)."""
    env = {"RATEL_CHARGING_VALIDITY_SECONDS": "200", "RATEL_RADIUS_INTERIM_INTERVAL": "300"}
    with pytest.raises(SettingsError, match=r"RATEL_CHARGING_VALIDITY_SECONDS: .*\(260 s\)"):
        load_settings(env=env)
    assert load_settings(env={**env, "RATEL_CHARGING_VALIDITY_SECONDS": "300"})


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"RATEL_ENVIRONMENT": "production"})
    assert "RATEL_SECRET" in str(caught.value)
    assert "development secret" in str(caught.value)
    with pytest.raises(SettingsError, match="development secret"):
        load_settings(env={"RATEL_ENVIRONMENT": "production", "RATEL_SECRET": DEVELOPMENT_SECRET})


def test_production_starts_with_its_own_secret() -> None:
    settings = load_settings(env={"RATEL_ENVIRONMENT": "production", "RATEL_SECRET": "k" * 32})
    assert settings.environment is Environment.PRODUCTION
    assert settings.secret == "k" * 32


def test_development_accepts_the_development_secret() -> None:
    assert load_settings(env={"RATEL_ENVIRONMENT": "development"}).secret == DEVELOPMENT_SECRET


def test_the_diameter_peer_limits_reach_the_node() -> None:
    from ratel.container import _diameter_settings

    settings = load_settings(
        env={
            "RATEL_DIAMETER_MAX_IN_FLIGHT": "64",
            "RATEL_DIAMETER_WATCHDOG": "6",
            "RATEL_DIAMETER_ANSWER_TIMEOUT": "1.5",
            "RATEL_DIAMETER_VENDOR_ID": "32473",
        }
    )
    node = _diameter_settings(settings)
    assert (node.max_in_flight, node.watchdog_seconds, node.answer_timeout, node.vendor_id) == (
        64,
        6.0,
        1.5,
        32473,
    )
    default = _diameter_settings(load_settings(env={}))
    assert (
        default.max_in_flight,
        default.watchdog_seconds,
        default.answer_timeout,
        default.vendor_id,
    ) == (1000, 30.0, 4.0, 0)


async def test_the_pool_settings_reach_the_engine() -> None:
    from ratel.container import build_container, dispose

    settings = load_settings(
        env={
            "RATEL_DATABASE_URL": "postgresql+asyncpg://ratel@127.0.0.1/ratel",
            "RATEL_DATABASE_POOL_SIZE": "7",
            "RATEL_DATABASE_MAX_OVERFLOW": "0",
        }
    )
    container = build_container(settings)
    pool = container.engine().sync_engine.pool
    # no connection is opened to know the pool's shape
    assert (pool.size(), pool._max_overflow) == (7, 0)  # type: ignore[attr-defined]
    await dispose(container)
