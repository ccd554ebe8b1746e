"""The framework-neutral web pieces: cookie settings, device descriptions, the idle script."""

from __future__ import annotations

import pytest

from sessync.web import (
    CookieSettings,
    describe_user_agent,
    device_for,
    idle_script,
    read_binding,
    sign_binding,
    truncate_utf8,
)


def test_cookie_attributes() -> None:
    attrs = CookieSettings().attributes(3600)
    assert attrs["httponly"] and attrs["secure"] and attrs["samesite"] == "Lax"
    assert attrs["max_age"] == 3600
    dev = CookieSettings.from_mapping({"COOKIE_SECURE": False, "COOKIE_NAME": "s"})
    assert not dev.secure and dev.name == "s"
    assert dev.samesite_literal == "lax"
    with pytest.raises(ValueError):
        CookieSettings(samesite="None", secure=False)
    with pytest.raises(ValueError):
        CookieSettings(samesite="sometimes")


def test_devices() -> None:
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
    assert describe_user_agent(ua) == "Chrome on Windows"
    assert describe_user_agent("curl/8.0") == "curl"
    assert describe_user_agent(None) is None
    d = device_for("x" * 1000 + "\n", "127.0.0.1")
    assert d.user_agent is not None and len(d.user_agent.encode()) == 512
    assert "\n" not in d.user_agent and d.ip == "127.0.0.1"
    assert truncate_utf8("é" * 300, 5) == "éé"  # cut on a character boundary


def test_idle_script_holds_numbers_and_urls_only() -> None:
    script = idle_script(90, status_url="/s/", logout_url="/login/</script>", warn_before=30)
    assert script.startswith("<script>") and script.endswith("</script>")
    assert '"seconds": 90' in script and '"warn": 30' in script
    assert "/login/<\\/script>" in script  # cannot close the tag early
    assert 'nonce="n1"' in idle_script(1, status_url="/", logout_url="/", nonce="n1")


def test_binding_is_tied_to_the_token_and_the_secret() -> None:
    value = sign_binding("secret", "token-a", "s_1", "alice@example.com")
    assert read_binding("secret", "token-a", value) == ("s_1", "alice@example.com")
    assert read_binding("secret", "token-b", value) is None  # another token
    assert read_binding("other", "token-a", value) is None  # another secret
    forged = value.replace("s_1", "s_2", 1)
    assert read_binding("secret", "token-a", forged) is None
    assert read_binding("secret", "token-a", None) is None
    assert read_binding("secret", "token-a", "a.b") is None
