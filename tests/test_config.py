"""Configuration is read once from the environment, and malformed values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from modreg._config import Settings
from modreg.errors import ConfigError


def test_defaults_and_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.from_env({"MODREG_REGISTRY": "~/team-registry"})
    assert settings.registry == str(tmp_path / "team-registry")
    assert settings.home == tmp_path / ".modreg"
    assert settings.store_cache == tmp_path / ".modreg" / "store-cache"
    assert not settings.offline and not settings.debug
    remote = Settings.from_env({"MODREG_REGISTRY": "s3://bucket/~x", "MODREG_OFFLINE": "yes"})
    assert remote.registry == "s3://bucket/~x" and remote.offline


@pytest.mark.parametrize("name", ["MODREG_OFFLINE", "MODREG_DEBUG"])
def test_malformed_flags_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}='maybe' is not a boolean"):
        Settings.from_env({name: "maybe"})
