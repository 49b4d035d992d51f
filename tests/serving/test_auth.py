"""The bearer token: generated 0600 when absent, read back, compared in constant time."""

import stat

import pytest

from sc2deploy.errors import UsageError
from sc2deploy.stream.client import read_token
from sc2deploy.wire import TOKEN_ENV
from sc2deploy.serving.auth import authorized, server_token


def test_a_missing_token_file_is_generated_0600_and_read_back(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    path = tmp_path / "token"
    token, where = server_token(path)
    assert "generated, written to" in where and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server_token(path) == (token, str(path))
    assert read_token(path) == token  # what the device reads


def test_the_environment_wins_and_bad_tokens_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-123")
    assert server_token(tmp_path / "unused")[0] == "from-the-environment-123"
    assert not (tmp_path / "unused").exists()
    monkeypatch.setenv(TOKEN_ENV, "short")
    with pytest.raises(UsageError, match="16-256 characters"):
        server_token(None)


def test_without_a_file_the_token_is_generated_and_not_saved(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token, where = server_token(None)
    assert "not saved" in where and len(token) >= 40
    with pytest.raises(UsageError, match="no token"):
        read_token(None)


@pytest.mark.parametrize("header,ok", [
    ("Bearer right-token-0123456789", True), ("bearer right-token-0123456789", True),
    ("Bearer wrong-token-0123456789", False), ("Basic right-token-0123456789", False),
    ("right-token-0123456789", False), ("", False), (None, False),
    ("Bearer right-token-0123456789x", False), ("Bearer rïght", False)])
def test_authorized(header, ok):
    assert authorized(header, "right-token-0123456789") is ok
