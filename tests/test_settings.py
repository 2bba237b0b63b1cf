"""Typed settings: the config file's keys are checked once, and a misspelt one names its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import runner

from snowcheck.errors import ConfigError
from snowcheck.settings import (
    CONFIG_KEYS,
    RuleOptions,
    check_keys,
    check_settings,
    load_file,
    write_settings,
)

run = runner(width=240)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"instances": {"prod": {"windw": "4h"}}},
            "unknown key 'windw' in [instances.prod]: did you mean 'window'?",
        ),
        (
            {"bacth_size": 10},
            "unknown key 'bacth_size' in the config file's top level: did you mean 'batch_size'?",
        ),
        (
            {"instances": {"dev": {"zzz": 1}}},
            "unknown key 'zzz' in [instances.dev]: known keys: instance, user,",
        ),
    ],
)
def test_an_unknown_key_names_the_closest_known_one(
    document: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_keys(document)
    assert str(caught.value).startswith(message)


def test_every_known_key_is_accepted_at_the_top_and_in_a_profile() -> None:
    table = dict.fromkeys(CONFIG_KEYS, "x")
    check_keys({**table, "instances": {"prod": table}})


def test_a_misspelt_key_in_the_file_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "snowcheck.toml"
    config.write_text('[instances.prod]\ninstance = "dev1"\nwindw = "4h"\n')
    code, out, err = run("check", "--config", str(config), "--profile", "prod")
    assert code == 2
    assert out == ""
    assert "unknown key 'windw' in [instances.prod]: did you mean 'window'?" in err
    assert len(err.strip().splitlines()) == 1


def test_the_doctor_refuses_an_unknown_key_too(tmp_path: Path) -> None:
    config = tmp_path / "snowcheck.toml"
    config.write_text('instance = "dev1"\npage_sise = 100\n')
    code, _, err = run("doctor", "--config", str(config))
    assert code == 2
    assert "did you mean 'page_size'?" in err


def test_the_file_is_read_once_into_typed_settings(tmp_path: Path) -> None:
    config = tmp_path / "snowcheck.toml"
    config.write_text('window = "1h"\nbatch = false\nbatch_size = 7\napply = false\n')
    document = load_file(str(config), {})
    warnings: list[str] = []
    settings = check_settings(RuleOptions(source="mine"), document, warnings.append)
    assert (settings.window.total_seconds(), settings.source) == (3600, "mine")
    write = write_settings(document)
    assert (write.batch, write.batch_items, write.allowed) == (False, 7, False)
    assert warnings == []
