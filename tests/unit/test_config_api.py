"""The GraphQL API's settings: login throttling and the customer page link."""

from __future__ import annotations

import pytest

from ratel.config import SettingsError, load_settings


def test_the_throttle_and_page_settings() -> None:
    settings = load_settings(
        env={
            "RATEL_LOGIN_MAX_FAILURES": "3",
            "RATEL_LOGIN_MAX_FAILURES_PER_ADDRESS": "30",
            "RATEL_LOGIN_THROTTLE_SECONDS": "60",
            "RATEL_CUSTOMER_PAGE_URL": " https://bo.example.com/customers/{customer_id} ",
        }
    )
    assert (settings.login_max_failures, settings.login_max_failures_per_address) == (3, 30)
    assert settings.login_throttle_seconds == 60
    assert settings.customer_page_url == "https://bo.example.com/customers/{customer_id}"
    assert load_settings(env={"RATEL_CUSTOMER_PAGE_URL": ""}).customer_page_url is None
    assert load_settings(env={}).customer_page_url is None


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RATEL_LOGIN_MAX_FAILURES", "0", "at least 1"),
        ("RATEL_LOGIN_MAX_FAILURES_PER_ADDRESS", "many", "whole number"),
        ("RATEL_LOGIN_THROTTLE_SECONDS", "-5", "positive"),
        ("RATEL_CUSTOMER_PAGE_URL", "https://bo.example.com/customers", "{customer_id}"),
        ("RATEL_CUSTOMER_PAGE_URL", "ftp://bo.example.com/{customer_id}", "http(s)"),
        ("RATEL_CUSTOMER_PAGE_URL", "https://bo/{customer_id}/{tab}", "only {customer_id}"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={variable: value})
    assert str(caught.value).startswith(f"{variable}: ")
    assert says in str(caught.value)
