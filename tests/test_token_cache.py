"""The OAuth token cache: 0600, keyed by instance, client and user, and wary of its file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from snowcheck.servicenow.token_cache import CacheKey, Token, TokenCache, default_path

ACCESS = "access-Tok3n-value-0001"
REFRESH = "refresh-Tok3n-value-0001"
KEY = CacheKey("https://example.service-now.com", "client-1", "svc.snowcheck")
TOKEN = Token(ACCESS, 2_000_000_000.0, 1799.0, REFRESH)


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "state" / "snowcheck" / "oauth-tokens.json")


def test_a_saved_token_comes_back(cache: TokenCache) -> None:
    assert cache.load(KEY) == (None, None)
    assert cache.save(KEY, TOKEN) is None
    assert cache.load(KEY) == (TOKEN, None)
    # A new object on the same file (the next cron run) reads it too.
    assert TokenCache(cache.path).load(KEY) == (TOKEN, None)


def test_the_file_is_0600_in_a_0700_folder(cache: TokenCache) -> None:
    cache.save(KEY, TOKEN)
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700
    assert [p.name for p in cache.path.parent.iterdir()] == [cache.path.name]


def test_entries_are_kept_apart_by_instance_client_and_user(cache: TokenCache) -> None:
    others = [
        CacheKey("https://other.service-now.com", "client-1", "svc.snowcheck"),
        CacheKey("https://example.service-now.com", "client-2", "svc.snowcheck"),
        CacheKey("https://example.service-now.com", "client-1", "someone.else"),
        CacheKey("https://example.service-now.com", "client-1", None),
    ]
    cache.save(KEY, TOKEN)
    for number, key in enumerate(others):
        assert cache.load(key) == (None, None)
        cache.save(key, Token(f"token-{number}", 1.0, 2.0))
    assert cache.load(KEY) == (TOKEN, None)
    assert cache.load(others[3])[0] == Token("token-3", 1.0, 2.0)
    # The instance URL is compared without case or a trailing slash.
    same = CacheKey("HTTPS://Example.service-now.com/", "client-1", "svc.snowcheck")
    assert cache.load(same) == (TOKEN, None)


def test_forgetting_a_token(cache: TokenCache) -> None:
    cache.save(KEY, TOKEN)
    assert cache.save(KEY, None) is None
    assert cache.load(KEY) == (None, None)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b"[]", b'{"format": 1, "tokens": []}', b'{"format": 99}'],
)
def test_a_corrupt_file_is_ignored_with_a_warning(cache: TokenCache, content: bytes) -> None:
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(content)
    cache.path.chmod(0o600)
    token, warning = cache.load(KEY)
    assert token is None
    assert warning == f"ignoring the token cache {cache.path}: it is corrupt"
    # Saving replaces it with a good file.
    assert cache.save(KEY, TOKEN) is None
    assert cache.load(KEY) == (TOKEN, None)


def test_a_corrupt_entry_is_ignored_with_a_warning(cache: TokenCache) -> None:
    cache.save(KEY, TOKEN)
    document = json.loads(cache.path.read_text())
    document["tokens"][KEY.text()]["expires_at"] = "soon"
    cache.path.write_text(json.dumps(document))
    assert cache.load(KEY) == (None, f"ignoring the token cache {cache.path}: it is corrupt")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o666])
def test_a_file_others_may_read_is_ignored(cache: TokenCache, mode: int) -> None:
    cache.save(KEY, TOKEN)
    cache.path.chmod(mode)
    token, warning = cache.load(KEY)
    assert token is None
    assert warning is not None and "others may read it" in warning and "chmod 600" in warning
    assert ACCESS not in warning and REFRESH not in warning
    cache.save(KEY, TOKEN)
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600


def test_a_file_of_another_user_is_ignored(
    cache: TokenCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.save(KEY, TOKEN)
    monkeypatch.setattr(os, "geteuid", lambda: cache.path.stat().st_uid + 1)
    assert cache.load(KEY) == (
        None,
        f"ignoring the token cache {cache.path}: it belongs to another user",
    )


def test_a_symlink_is_not_followed(cache: TokenCache, tmp_path: Path) -> None:
    elsewhere = TokenCache(tmp_path / "elsewhere.json")
    elsewhere.save(KEY, TOKEN)
    cache.path.parent.mkdir(parents=True)
    cache.path.symlink_to(elsewhere.path)
    token, warning = cache.load(KEY)
    assert token is None and warning is not None
    assert warning.startswith(f"ignoring the token cache {cache.path}: ")


def test_an_unwritable_folder_gives_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = TokenCache(blocker / "oauth-tokens.json")
    warning = cache.save(KEY, TOKEN)
    assert warning is not None and warning.startswith("cannot write the token cache ")


def test_the_default_file_is_in_the_user_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    assert default_path() == tmp_path / "xdg-state" / "snowcheck" / "oauth-tokens.json"
    assert TokenCache().path == default_path()


def test_the_repr_of_a_token_holds_no_secret() -> None:
    assert ACCESS not in repr(TOKEN) and REFRESH not in repr(TOKEN)


@pytest.mark.parametrize(
    ("lifetime", "refresh_before"),
    [(1800.0, 60.0), (120.0, 60.0), (100.0, 50.0), (2.0, 1.0), (0.0, 0.0)],
)
def test_refresh_60_s_before_expiry_or_half_way(lifetime: float, refresh_before: float) -> None:
    token = Token("t", 1000.0 + lifetime, lifetime)
    assert token.refresh_at() == 1000.0 + lifetime - refresh_before
    assert token.fresh(token.refresh_at() - 0.001)
    assert not token.fresh(token.refresh_at())
