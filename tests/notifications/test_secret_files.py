"""GOV.UK Notify's API key, its callback token and the SMTP password come from secret files
like every other secret (`*_FILE`): read, checked against placeholders, and never given
both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.notifications.settings import NotificationSettings

KEY = "ibest_live-11111111-2222-3333-4444-555555555555-66666666-7777-8888-9999-000000000000"


def test_each_secret_is_read_from_its_file(tmp_path: Path) -> None:
    files = {}
    for name, value in (
        ("notify_api_key", KEY),
        ("callback_token", "c" * 40),
        ("smtp_password", "s0m3-l0ng-r3lay-pw"),
    ):
        files[name] = tmp_path / name
        files[name].write_text(value + "\n")
    settings = NotificationSettings(
        IBEST_NOTIFY_API_KEY_FILE=files["notify_api_key"],
        IBEST_NOTIFY_CALLBACK_TOKEN_FILE=files["callback_token"],
        IBEST_SMTP_PASSWORD_FILE=files["smtp_password"],
    )
    assert settings.notify_api_key == KEY
    assert settings.callback_token == "c" * 40
    assert settings.smtp_password == "s0m3-l0ng-r3lay-pw"


def test_a_placeholder_or_a_secret_given_twice_is_refused(tmp_path: Path) -> None:
    placeholder = tmp_path / "key"
    placeholder.write_text("change-me\n")
    with pytest.raises(ValidationError, match="IBEST_NOTIFY_API_KEY_FILE"):
        NotificationSettings(IBEST_NOTIFY_API_KEY_FILE=placeholder)
    good = tmp_path / "token"
    good.write_text("t" * 40)
    with pytest.raises(ValidationError, match="not both"):
        NotificationSettings(
            IBEST_NOTIFY_CALLBACK_TOKEN="x" * 40, IBEST_NOTIFY_CALLBACK_TOKEN_FILE=good
        )
    with pytest.raises(ValidationError, match="cannot read"):
        NotificationSettings(IBEST_SMTP_PASSWORD_FILE=tmp_path / "missing")
