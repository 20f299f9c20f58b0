"""The credential store: canonical server keys, credentials, the 0600 file and the keyring.

Keyring tests run against the OS keyring where this machine has one (under unique, throw-away
server names, removed afterwards); only where there is none (headless Linux, CI) do they use the
in-memory backend below, as the project's rules allow.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import KeyringLocked, PasswordDeleteError

from mcp_remote_py.auth import os_keyring, store_files
from mcp_remote_py.auth import store as store_module
from mcp_remote_py.auth.store import (
    CONFIG_DIR_ENV,
    CREDENTIALS_FILE,
    SERVICE,
    STORE_KIND_ENV,
    Credential,
    CredentialStore,
    CredentialStoreError,
    bearer_header_for,
    canonical_server_key,
    config_dir,
    find_os_keyring,
    mask_secret,
)

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok_live_0123456789abcdefghijklmnop"
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


class MemoryKeyring(KeyringBackend):
    """A keyring in a dict; for machines without an OS keyring only. ``max_len`` mimics a
    backend with a size limit per secret (Windows Credential Manager)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, max_len: int | None = None) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.max_len = max_len
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.max_len is not None and len(password) > self.max_len:
            raise AssertionError(f"secret of {len(password)} > {self.max_len} characters")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")


@functools.cache
def os_keyring_present() -> bool:
    return find_os_keyring() is not None


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.delenv(STORE_KIND_ENV, raising=False)
    monkeypatch.setattr(store_module, "_warned", set())


@pytest.fixture
def file_store(tmp_path: Path) -> CredentialStore:
    warnings: list[str] = []
    store = CredentialStore("file", config_dir=tmp_path / "config", warn=warnings.append)
    return store


@pytest.fixture
def keyring_store(tmp_path: Path) -> Iterator[CredentialStore]:
    """A keyring store: the OS keyring if there is one, else the in-memory backend."""
    backend = find_os_keyring() or MemoryKeyring()
    store = CredentialStore(backend=backend, config_dir=tmp_path / "config")
    yield store
    for key in store.list():
        store.delete(key)


def unique_url(path: str = "/mcp") -> str:
    # Throw-away names (.invalid never resolves) so a real keyring's own entries are never touched.
    return f"https://test-{uuid.uuid4().hex[:12]}.mcp-remote-py.invalid{path}"


# --------------------------------------------------------------------------- canonical keys


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://mcp.example.com/mcp", "https://mcp.example.com:443/mcp"),
        ("http://mcp.example.com/mcp", "http://mcp.example.com:80/mcp"),
        ("https://mcp.example.com:443/mcp", "https://mcp.example.com:443/mcp"),
        ("http://mcp.example.com:80/mcp", "http://mcp.example.com:80/mcp"),
        ("https://mcp.example.com:8443/mcp", "https://mcp.example.com:8443/mcp"),
        ("http://localhost:3001/mcp", "http://localhost:3001/mcp"),
        ("http://127.0.0.1:3001/sse", "http://127.0.0.1:3001/sse"),
        ("http://[::1]:3001/mcp", "http://[::1]:3001/mcp"),
        ("https://[2001:DB8::1]/mcp", "https://[2001:db8::1]:443/mcp"),
    ],
)
def test_canonical_key_fills_in_the_port(url: str, key: str) -> None:
    assert canonical_server_key(url) == key


def test_canonical_key_lowercases_scheme_and_host_but_not_the_path() -> None:
    assert canonical_server_key("HTTPS://MCP.Example.COM/mcp") == "https://mcp.example.com:443/mcp"
    assert canonical_server_key("https://mcp.example.com/MCP") == "https://mcp.example.com:443/MCP"


def test_canonical_key_strips_trailing_slashes() -> None:
    assert canonical_server_key("https://h.example/mcp/") == "https://h.example:443/mcp"
    assert canonical_server_key("https://h.example/mcp//") == "https://h.example:443/mcp"
    assert canonical_server_key("https://h.example/") == "https://h.example:443"
    assert canonical_server_key("https://h.example") == "https://h.example:443"
    assert canonical_server_key("  https://h.example/mcp \n") == "https://h.example:443/mcp"


def test_canonical_key_drops_query_fragment_and_userinfo() -> None:
    key = canonical_server_key("https://user:hunter2secret@h.example/mcp?api_key=abc123#frag")
    assert key == "https://h.example:443/mcp"
    for part in ("hunter2secret", "user", "api_key", "abc123", "frag"):
        assert part not in key


def test_different_endpoints_are_different_keys() -> None:
    keys = {
        canonical_server_key(url)
        for url in (
            "https://h.example/mcp",
            "https://h.example/sse",
            "https://h.example/mcp/v2",
            "https://h.example/",
            "http://h.example/mcp",
            "https://h.example:8443/mcp",
            "https://other.example/mcp",
            "https://h.example.evil.example/mcp",
        )
    }
    assert len(keys) == 8


def test_canonical_key_agrees_with_the_url_the_relay_parses() -> None:
    # The relay parses its URL with httpx; whichever form reaches bearer_header_for, the key
    # must be the one `auth set` stored under.
    for raw in (
        "https://MCP.example.com/mcp/",
        "https://bücher.example/mcp",
        "http://localhost:3001/a path/mcp",
        "https://h.example/caf%c3%a9",
        "https://h.example/café",
        "http://[::1]:3001/mcp",
    ):
        assert canonical_server_key(str(httpx.URL(raw))) == canonical_server_key(raw), raw
    assert canonical_server_key("https://bücher.example/mcp") == (
        "https://xn--bcher-kva.example:443/mcp"
    )


@pytest.mark.parametrize(
    "url",
    [
        "mcp.example.com/mcp",
        "ftp://mcp.example.com/mcp",
        "https:///mcp",
        "https://h.example:99999/mcp",
        "https://h.example:port/mcp",
        "",
        "tok_live_0123456789abcdefghijklmnop",
    ],
)
def test_bad_urls_are_refused_without_repeating_them_in_full(url: str) -> None:
    with pytest.raises(ValueError, match="e.g. https://mcp.example.com/mcp") as caught:
        canonical_server_key(url)
    message = str(caught.value).replace("e.g. https://mcp.example.com/mcp", "")
    assert mask_secret(url.strip()) in message
    if len(url) >= 12:
        assert url not in message


# --------------------------------------------------------------------------- credentials


def test_mask_secret() -> None:
    assert mask_secret("abcdefghijkl") == "abcd…ijkl"
    assert mask_secret(TOKEN) == "tok_…mnop"
    assert mask_secret("abcdefghijk") == "***"
    assert mask_secret("") == "***"


def test_credential_json_round_trip() -> None:
    full = Credential(
        kind="oauth",
        access_token="access-0123456789",
        refresh_token="refresh-0123456789",
        expires_at=1_900_000_000.5,
        client={"client_id": "abc", "redirect_uris": ["http://127.0.0.1:1234/cb"]},
        saved_at=1_800_000_000.0,
    )
    assert Credential.from_json(full.to_json()) == full
    bearer = Credential(access_token=TOKEN)
    again = Credential.from_json(bearer.to_json())
    assert again == bearer
    assert again.kind == "bearer"
    assert again.refresh_token is None
    assert again.expires_at is None
    assert again.client is None
    assert again.saved_at > 0


def test_credential_repr_never_shows_secrets() -> None:
    credential = Credential(
        kind="oauth", access_token=TOKEN, refresh_token="refresh-secret-99", client={"k": "v"}
    )
    text = repr(credential) + str(credential)
    assert TOKEN not in text
    assert "refresh-secret-99" not in text
    assert "oauth" in text


def test_credential_expiry() -> None:
    assert not Credential(access_token=TOKEN).expired()
    assert Credential(access_token=TOKEN, expires_at=100.0).expired(now=100.0)
    assert not Credential(access_token=TOKEN, expires_at=100.0).expired(now=99.0)


def test_credential_from_json_ignores_unknown_fields() -> None:
    data = json.loads(Credential(access_token=TOKEN).to_json())
    data["added_later"] = {"x": 1}
    assert Credential.from_dict(data).access_token == TOKEN


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        ({}, "access_token"),
        ({"access_token": ""}, "access_token"),
        ({"access_token": 12}, "access_token"),
        ({"access_token": TOKEN, "expires_at": "soon"}, "expires_at"),
        ({"access_token": TOKEN, "expires_at": True}, "expires_at"),
        ({"access_token": TOKEN, "refresh_token": 5}, "refresh_token"),
        ({"access_token": TOKEN, "client": []}, "client"),
        ({"access_token": TOKEN, "kind": "basic"}, "kind"),
        ([], "object"),
    ],
)
def test_credential_from_dict_names_the_bad_field_not_its_value(
    data: object, field_name: str
) -> None:
    with pytest.raises(ValueError, match=field_name) as caught:
        Credential.from_dict(data)
    assert TOKEN not in str(caught.value)


# --------------------------------------------------------------------------- configuration


def test_config_dir_comes_from_the_environment_variable(tmp_path: Path) -> None:
    assert config_dir({CONFIG_DIR_ENV: str(tmp_path / "x")}) == tmp_path / "x"
    assert CredentialStore("file").config_dir == tmp_path / "config"
    default = config_dir({})
    assert default.name == "mcp-remote-py"


def test_store_kind_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_KIND_ENV, "file")
    assert CredentialStore().store_kind == "file"
    assert CredentialStore().describe().startswith("file: ")
    monkeypatch.setenv(STORE_KIND_ENV, "vault")
    with pytest.raises(CredentialStoreError, match=f"{STORE_KIND_ENV}=vault.*auto, keyring, file"):
        CredentialStore()
    with pytest.raises(CredentialStoreError, match="--credential-store vault"):
        CredentialStore("vault")


def test_keyring_asked_for_but_absent_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "find_os_keyring", lambda: None)
    store = CredentialStore("keyring")
    with pytest.raises(CredentialStoreError) as caught:
        store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    message = str(caught.value)
    assert "no OS keyring" in message
    assert "--credential-store file" in message
    if sys.platform.startswith("linux"):
        assert "gnome-keyring" in message
    assert not (store.config_dir / CREDENTIALS_FILE).exists()


def test_auto_falls_back_to_the_file_and_warns_once_per_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(store_module, "find_os_keyring", lambda: None)
    warnings: list[str] = []
    first = CredentialStore(warn=warnings.append)
    first.put("https://h.example/mcp", Credential(access_token=TOKEN))
    assert first.describe() == f"file: {first.file_path} (no OS keyring)"
    second = CredentialStore(warn=warnings.append)
    assert second.get("https://h.example/mcp") is not None
    assert len(warnings) == 1
    (warning,) = warnings
    assert "no OS keyring" in warning
    assert str(tmp_path / "config" / CREDENTIALS_FILE) in warning
    assert "\n" not in warning


def test_the_no_keyring_warning_comes_once_when_the_file_is_made_not_at_every_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "find_os_keyring", lambda: None)
    warnings: list[str] = []
    CredentialStore(warn=warnings.append).put(
        "https://h.example/mcp", Credential(access_token=TOKEN)
    )
    assert len(warnings) == 1
    for _ in range(3):  # relays started later, each a process of its own
        monkeypatch.setattr(store_module, "_warned", set())
        later = CredentialStore(warn=warnings.append)
        assert later.get("https://h.example/mcp") is not None
        # A second server: the file is there already.
        later.put("https://other.example/mcp", Credential(access_token=TOKEN))
        assert later.describe().endswith("(no OS keyring)")  # what doctor reports each time
    assert len(warnings) == 1


def test_a_chosen_file_store_does_not_claim_there_is_no_keyring(
    file_store: CredentialStore,
) -> None:
    file_store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    assert file_store.describe() == (
        f"file: {file_store.file_path} (chosen with --credential-store file)"
    )


def test_nothing_stored_means_no_keyring_lookup_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run() -> None:
        raise AssertionError("the keyring was looked for although nothing was ever stored")

    monkeypatch.setattr(store_module, "find_os_keyring", must_not_run)
    assert CredentialStore().get("https://h.example/mcp") is None
    assert bearer_header_for("https://h.example/mcp") is None


def test_the_relay_path_does_not_import_keyring_when_nothing_is_stored(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        import mcp_remote_py.auth
        from mcp_remote_py.auth.store import bearer_header_for
        assert bearer_header_for("https://mcp.example.com/mcp") is None
        assert "keyring" not in sys.modules, "keyring was imported"
        print("ok")
        """
    )
    env = {**os.environ, CONFIG_DIR_ENV: str(tmp_path / "empty")}
    env.pop(STORE_KIND_ENV, None)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --------------------------------------------------------------------------- the file store


def test_file_store_round_trip(file_store: CredentialStore) -> None:
    url = "https://mcp.example.com/mcp"
    assert file_store.get(url) is None
    assert file_store.list() == []
    key = file_store.put(url, Credential(access_token=TOKEN))
    assert key == "https://mcp.example.com:443/mcp"
    got = file_store.get("HTTPS://mcp.example.com:443/mcp/")
    assert got is not None
    assert got.access_token == TOKEN
    file_store.put("http://localhost:3001/mcp", Credential(access_token="other-token-1234"))
    assert file_store.list() == ["http://localhost:3001/mcp", "https://mcp.example.com:443/mcp"]
    file_store.put(url, Credential(access_token="replaced-token-5678"))
    again = file_store.get(url)
    assert again is not None
    assert again.access_token == "replaced-token-5678"
    assert file_store.delete(url) is True
    assert file_store.delete(url) is False
    assert file_store.get(url) is None
    assert file_store.list() == ["http://localhost:3001/mcp"]


def test_a_token_is_only_found_for_exactly_its_server(file_store: CredentialStore) -> None:
    file_store.put("https://mcp.example.com/mcp", Credential(access_token=TOKEN))
    for other in (
        "https://mcp.example.com/sse",
        "https://mcp.example.com:8443/mcp",
        "http://mcp.example.com/mcp",
        "https://mcp.example.com.evil.example/mcp",
        "https://evil.example/mcp",
        "https://mcp.example.com/mcp/other",
    ):
        assert file_store.get(other) is None, other
        assert bearer_header_for(other, file_store) is None, other
    assert bearer_header_for("https://mcp.example.com/mcp/", file_store) == (
        "Authorization",
        f"Bearer {TOKEN}",
    )


def test_file_contents(file_store: CredentialStore) -> None:
    file_store.put(
        "https://mcp.example.com/mcp",
        Credential(access_token=TOKEN, expires_at=1_900_000_000.0, saved_at=1_800_000_000.0),
    )
    data = json.loads(file_store.file_path.read_text(encoding="utf-8"))
    assert data == {
        "version": 1,
        "credentials": {
            "https://mcp.example.com:443/mcp": {
                "kind": "bearer",
                "access_token": TOKEN,
                "refresh_token": None,
                "expires_at": 1_900_000_000.0,
                "client": None,
                "saved_at": 1_800_000_000.0,
            }
        },
    }


@POSIX
def test_file_is_created_0600_whatever_the_umask(file_store: CredentialStore) -> None:
    old = os.umask(0)
    try:
        file_store.put("https://mcp.example.com/mcp", Credential(access_token=TOKEN))
        file_store.put("https://other.example/mcp", Credential(access_token=TOKEN))
    finally:
        os.umask(old)
    assert os.stat(file_store.file_path).st_mode & 0o777 == 0o600
    assert os.stat(file_store.lock_path).st_mode & 0o777 == 0o600
    assert os.stat(file_store.config_dir).st_mode & 0o777 == 0o700


@POSIX
def test_file_mode_is_never_fixed_up_afterwards(
    file_store: CredentialStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Created 0600 by os.open, not written wider and chmod-ed: a chmod would be a window in
    # which another user could open the file.
    def no_chmod(*args: object, **kwargs: object) -> None:
        raise AssertionError("chmod called")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(os, "fchmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    file_store.put("https://mcp.example.com/mcp", Credential(access_token=TOKEN))
    assert os.stat(file_store.file_path).st_mode & 0o777 == 0o600


def test_file_is_replaced_atomically(
    file_store: CredentialStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_store.put("https://mcp.example.com/mcp", Credential(access_token=TOKEN))
    before = file_store.file_path.read_bytes()
    inode = os.stat(file_store.file_path).st_ino
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def recording_replace(src: str, dst: str) -> None:
        replaced.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    file_store.put("https://other.example/mcp", Credential(access_token="second-token-123"))
    (src, dst) = replaced[-1]
    assert Path(dst) == file_store.file_path
    assert Path(src).parent == file_store.file_path.parent  # same directory, same file system
    if sys.platform != "win32":
        assert os.stat(file_store.file_path).st_ino != inode  # a new file, not rewritten in place

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    after_second = file_store.file_path.read_bytes()
    with pytest.raises(CredentialStoreError, match="cannot write .*credentials.json"):
        file_store.put("https://third.example/mcp", Credential(access_token="third-token-123"))
    assert file_store.file_path.read_bytes() == after_second != before
    leftovers = [p.name for p in file_store.config_dir.iterdir()]
    assert sorted(leftovers) == ["credentials.json", "credentials.lock"]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"version": 1, "credentials": {', "not JSON"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"[]", "'credentials' object"),
        (b'{"version": 1}', "'credentials' object"),
    ],
)
def test_a_damaged_file_is_a_clear_error_and_is_left_alone(
    file_store: CredentialStore, content: bytes, detail: str
) -> None:
    file_store.config_dir.mkdir(parents=True)
    file_store.file_path.write_bytes(content)
    for action in (
        lambda: file_store.get("https://h.example/mcp"),
        lambda: file_store.put("https://h.example/mcp", Credential(access_token=TOKEN)),
        lambda: file_store.delete("https://h.example/mcp"),
        file_store.list,
    ):
        with pytest.raises(CredentialStoreError) as caught:
            action()
        message = str(caught.value)
        assert str(file_store.file_path) in message
        assert detail in message
        assert "auth set" in message
        assert "move it away" in message
    assert file_store.file_path.read_bytes() == content


def test_a_damaged_entry_names_its_server_and_the_fix(file_store: CredentialStore) -> None:
    file_store.config_dir.mkdir(parents=True)
    file_store.file_path.write_text(
        json.dumps({"version": 1, "credentials": {"https://h.example:443/mcp": {"kind": "x"}}})
    )
    with pytest.raises(CredentialStoreError) as caught:
        file_store.get("https://h.example/mcp")
    message = str(caught.value)
    assert "https://h.example:443/mcp" in message
    assert "auth set https://h.example:443/mcp" in message


def test_a_file_from_a_newer_version_is_not_overwritten(file_store: CredentialStore) -> None:
    file_store.config_dir.mkdir(parents=True)
    file_store.file_path.write_text(json.dumps({"version": 2, "credentials": {}}))
    with pytest.raises(CredentialStoreError, match="version 2.*upgrade"):
        file_store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    assert json.loads(file_store.file_path.read_text())["version"] == 2


@POSIX
def test_a_file_others_can_read_is_reported(tmp_path: Path) -> None:
    warnings: list[str] = []
    store = CredentialStore("file", config_dir=tmp_path / "config", warn=warnings.append)
    store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    store.file_path.chmod(0o644)
    assert store.get("https://h.example/mcp") is not None
    assert any("chmod 600" in w and str(store.file_path) in w for w in warnings)


def test_a_held_lock_times_out_with_a_clear_error(
    file_store: CredentialStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_files, "LOCK_TIMEOUT", 0.2)
    with (
        store_files.locked(file_store.lock_path),
        pytest.raises(CredentialStoreError, match="locked"),
    ):
        file_store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    file_store.put("https://h.example/mcp", Credential(access_token=TOKEN))


WRITER = """
import sys
from mcp_remote_py.auth.store import Credential, CredentialStore
store = CredentialStore("file")
name, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    store.put(f"https://{name}-{i}.example/mcp", Credential(access_token=f"token-{name}-{i}-xxxx"))
    store.put("https://shared.example/mcp", Credential(access_token=f"shared-{name}-{i}-xxxx"))
    if i % 3 == 0:
        store.delete(f"https://{name}-{i}.example/mcp")
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    env = {**os.environ, CONFIG_DIR_ENV: str(tmp_path / "config")}
    count = 40
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, str(count)],
            env=env,
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    store = CredentialStore("file", config_dir=tmp_path / "config")
    expected = {
        f"https://{name}-{i}.example:443/mcp"
        for name in ("a", "b")
        for i in range(count)
        if i % 3 != 0
    } | {"https://shared.example:443/mcp"}
    assert set(store.list()) == expected
    for key in expected - {"https://shared.example:443/mcp"}:
        credential = store.get(key)
        assert credential is not None
        assert credential.access_token.startswith("token-")
    shared = store.get("https://shared.example/mcp")
    assert shared is not None
    assert shared.access_token in {f"shared-a-{count - 1}-xxxx", f"shared-b-{count - 1}-xxxx"}


# --------------------------------------------------------------------------- the keyring store


def test_keyring_store_round_trip(keyring_store: CredentialStore) -> None:
    url = unique_url()
    key = canonical_server_key(url)
    assert keyring_store.get(url) is None
    assert keyring_store.put(url, Credential(access_token=TOKEN)) == key
    got = keyring_store.get(url + "/")
    assert got is not None
    assert got.access_token == TOKEN
    assert keyring_store.list() == [key]
    assert keyring_store.describe().startswith("keyring: ")
    other = unique_url("/sse")
    keyring_store.put(other, Credential(access_token="other-token-1234"))
    assert keyring_store.list() == sorted([key, canonical_server_key(other)])
    keyring_store.put(url, Credential(kind="oauth", access_token="new-token-12345"))
    replaced = keyring_store.get(url)
    assert replaced is not None
    assert (replaced.kind, replaced.access_token) == ("oauth", "new-token-12345")
    assert keyring_store.delete(url) is True
    assert keyring_store.delete(url) is False
    assert keyring_store.get(url) is None
    assert keyring_store.list() == [canonical_server_key(other)]


def test_keyring_index_holds_keys_and_no_secrets(keyring_store: CredentialStore) -> None:
    url = unique_url()
    keyring_store.put(url, Credential(access_token=TOKEN))
    text = keyring_store.index_path.read_text(encoding="utf-8")
    assert TOKEN not in text
    assert json.loads(text) == {"version": 1, "keys": [canonical_server_key(url)]}
    assert not keyring_store.file_path.exists()
    if sys.platform != "win32":
        assert os.stat(keyring_store.index_path).st_mode & 0o777 == 0o600


# The in-memory keyring, where no OS keyring exists: what only a fake can show.
memory_only = pytest.mark.skipif(
    os_keyring_present(), reason="this machine has an OS keyring; the fake is not allowed"
)


@memory_only
def test_keyring_entries_are_service_and_canonical_key(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    store = CredentialStore(backend=backend, config_dir=tmp_path)
    store.put("https://MCP.example.com/mcp/", Credential(access_token=TOKEN))
    ((service, username),) = backend.entries
    assert (service, username) == (SERVICE, "https://mcp.example.com:443/mcp")
    assert json.loads(backend.entries[(service, username)])["access_token"] == TOKEN
    assert store.describe() == "keyring: MemoryKeyring"


@memory_only
def test_keys_not_in_the_index_never_reach_the_keyring(tmp_path: Path) -> None:
    # A keychain may prompt the user for each read: asking only for what was stored matters.
    backend = MemoryKeyring()
    store = CredentialStore(backend=backend, config_dir=tmp_path)
    assert store.get("https://h.example/mcp") is None
    assert bearer_header_for("https://h.example/mcp", store) is None
    assert backend.reads == 0


@memory_only
def test_long_secrets_are_split_for_small_keyrings(tmp_path: Path) -> None:
    backend = MemoryKeyring(max_len=200)
    store = CredentialStore(backend=backend, config_dir=tmp_path, max_secret_chars=200)
    long_token = "j" * 600 + "-end"
    store.put("https://h.example/mcp", Credential(access_token=long_token))
    assert len(backend.entries) > 4
    got = store.get("https://h.example/mcp")
    assert got is not None
    assert got.access_token == long_token
    store.put("https://h.example/mcp", Credential(access_token="short-token-xy"))
    assert len(backend.entries) == 1  # the old parts are gone
    short = store.get("https://h.example/mcp")
    assert short is not None
    assert short.access_token == "short-token-xy"
    store.put("https://h.example/mcp", Credential(access_token=long_token))
    assert store.delete("https://h.example/mcp") is True
    assert backend.entries == {}
    assert store.list() == []


@memory_only
def test_a_missing_part_is_a_clear_error(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    store = CredentialStore(backend=backend, config_dir=tmp_path, max_secret_chars=40)
    store.put("https://h.example/mcp", Credential(access_token="k" * 100))
    del backend.entries[(SERVICE, "https://h.example:443/mcp #2")]
    with pytest.raises(CredentialStoreError, match="part 2 of .* is missing.*auth set"):
        store.get("https://h.example/mcp")


@memory_only
def test_a_damaged_keyring_value_names_the_server(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    store = CredentialStore(backend=backend, config_dir=tmp_path)
    store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    backend.entries[(SERVICE, "https://h.example:443/mcp")] = "{not json " + TOKEN
    with pytest.raises(CredentialStoreError) as caught:
        store.get("https://h.example/mcp")
    message = str(caught.value)
    assert "https://h.example:443/mcp" in message
    assert "auth set" in message
    assert TOKEN not in message


@memory_only
def test_a_locked_keyring_is_a_clear_error(tmp_path: Path) -> None:
    store = CredentialStore(backend=LockedKeyring(), config_dir=tmp_path)
    store.index_path.write_text(json.dumps({"version": 1, "keys": ["https://h.example:443/mcp"]}))
    with pytest.raises(CredentialStoreError, match="locked.*unlock it.*--credential-store file"):
        store.get("https://h.example/mcp")


@memory_only
def test_bearer_header_for_uses_the_keyring(tmp_path: Path) -> None:
    store = CredentialStore(backend=MemoryKeyring(), config_dir=tmp_path)
    store.put("https://mcp.example.com/mcp", Credential(access_token=TOKEN))
    assert bearer_header_for("https://mcp.example.com:443/mcp", store) == (
        "Authorization",
        f"Bearer {TOKEN}",
    )
    assert bearer_header_for("https://mcp.example.com/sse", store) is None


@memory_only
def test_auto_keyring_store_still_finds_what_the_file_got_without_a_keyring(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Stored over SSH (no D-Bus: the file), used by the desktop's relay (the keyring).
    monkeypatch.setattr(store_module, "find_os_keyring", lambda: None)
    CredentialStore(config_dir=tmp_path, warn=lambda _: None).put(
        "https://h.example/mcp", Credential(access_token=TOKEN)
    )
    backend = MemoryKeyring()
    monkeypatch.setattr(store_module, "find_os_keyring", lambda: backend)
    desktop = CredentialStore(config_dir=tmp_path)
    assert desktop.list() == ["https://h.example:443/mcp"]
    found = desktop.lookup("https://h.example/mcp")
    assert found is not None
    assert found[0].access_token == TOKEN
    assert found[1] == f"file: {desktop.file_path} (stored while no OS keyring was found)"
    assert bearer_header_for("https://h.example/mcp", desktop) == (
        "Authorization",
        f"Bearer {TOKEN}",
    )
    # Storing it again moves it into the keyring.
    desktop.put("https://h.example/mcp", Credential(access_token="moved-token-123"))
    assert (
        "https://h.example:443/mcp" not in json.loads(desktop.file_path.read_text())["credentials"]
    )
    again = desktop.lookup("https://h.example/mcp")
    assert again is not None
    assert (again[0].access_token, again[1]) == ("moved-token-123", "keyring: MemoryKeyring")
    # A chosen keyring store does not read the file.
    CredentialStore("file", config_dir=tmp_path).put(
        "https://other.example/mcp", Credential(access_token=TOKEN)
    )
    assert CredentialStore("keyring", config_dir=tmp_path).get("https://other.example/mcp") is None
    assert desktop.delete("https://other.example/mcp") is True
    assert desktop.list() == ["https://h.example:443/mcp"]
    assert backend.entries.keys() == {(SERVICE, "https://h.example:443/mcp")}


def test_a_backend_together_with_the_file_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialStoreError):
        CredentialStore("file", backend=MemoryKeyring(), config_dir=tmp_path)


def test_find_os_keyring_takes_the_first_backend_that_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(MemoryKeyring):
        @properties.classproperty
        def priority(cls) -> float:
            raise RuntimeError("no D-Bus")

    def missing() -> type[KeyringBackend]:
        raise ImportError("no module")

    class Works(MemoryKeyring):
        pass

    monkeypatch.setattr(
        os_keyring, "_load_candidates", lambda: [missing, lambda: Broken, lambda: Works]
    )
    assert isinstance(find_os_keyring(), Works)
    monkeypatch.setattr(os_keyring, "_load_candidates", lambda: [missing, lambda: Broken])
    assert find_os_keyring() is None
