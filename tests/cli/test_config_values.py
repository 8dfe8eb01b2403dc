"""Values a person could mistype into gateway.toml are refused at start, naming the file, line,
section and key, not met later as a crash or a bounce from `MAILER-DAEMON@`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gateway
from gateway.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("section", "line", "said"),
    [
        ("[organisation]", "domains = [1]", "[organisation] domains: expected domain names"),
        ("[organisation]", 'domains = ["@safe.example"]', "got '@safe.example'"),
        ("[organisation]", 'domains = ["not a domain"]', "got 'not a domain'"),
        ("[server]", 'hostname = ""', "[server] hostname: expected a host name"),
        ("[server]", 'hostname = "mail server"', "got 'mail server'"),
        (
            "[delivery]",
            "retry_min = 5000",
            "[delivery] retry_min: retry_max (4000) is less than retry_min (5000)",
        ),
        ("[upstream]", 'url = "mx://relay.example"', "mx: takes nothing after it"),
        # A review: named as "retry_max (60) is less than retry_min (300)", the default.
        ("[delivery]", "retry_minn = 20\nretry_max = 60", "retry_minn: unknown key (did you mean"),
    ],
)
def test_a_mistyped_value_is_refused_naming_its_line(tmp_path: Path, section, line, said):
    config = tmp_path / "gateway.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n{section}\n{line}\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert said in str(refused.value)
    if "upstream" not in section:
        assert str(refused.value).startswith(f"{config}:4: ")


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("[organisation]", 'domains = ["école.example", "trust-1.sch.uk", "school.example."]'),
        ("[server]", 'hostname = "Mail.School.example"'),
        ("[upstream]", 'url = "mx:"'),
    ],
)
def test_ordinary_values_still_load(tmp_path: Path, section, line):
    config = tmp_path / "gateway.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n{section}\n{line}\n')
    load_settings(config)


def test_a_domain_written_with_the_root_s_dot_is_the_domain(tmp_path: Path):
    """A review: "school.example." was accepted, and no staff address would ever match it."""
    config = tmp_path / "gateway.toml"
    config.write_text('[organisation]\ndomains = ["School.Example."]\n')
    assert load_settings(config).organisation.domains == ("school.example",)


@pytest.mark.parametrize("section", ["server", "web", "api"])
@pytest.mark.parametrize("value", [":3525", "[]:3525", "3525"])
def test_a_listen_address_without_a_host_says_which_to_write(
    tmp_path: Path, section: str, value: str
):
    """A review: `listen = ":3525"` bound loopback, where an admin may have meant every
    interface (as socket.bind and most servers read it). Neither guess is safe for the relay or
    the console: refused, naming the file, line and key, and both ways of writing it."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n[{section}]\nlisten = "{value}"\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert str(refused.value) == (
        f"{config}:4: [{section}] listen: {value!r} names no host: write "
        '"0.0.0.0:3525" to listen on every interface, or "127.0.0.1:3525" for this machine only'
    )


@pytest.mark.parametrize(
    ("value", "host"),
    [("0.0.0.0:3525", "0.0.0.0"), ("127.0.0.1:3525", "127.0.0.1"), ("[::]:3525", "::")],
)
def test_a_listen_address_with_a_host_is_that_host(tmp_path: Path, value: str, host: str):
    config = tmp_path / "gateway.toml"
    config.write_text(f'[server]\nlisten = "{value}"\n[web]\nlisten = "{value}"\n')
    settings = load_settings(config)
    assert (settings.server.host, settings.server.port) == (host, 3525)
    assert settings.web_listen == (host, 3525)


def test_a_listen_port_in_other_digits_is_refused_not_a_crash(tmp_path: Path):
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:²"\n')
    with pytest.raises(ConfigError, match=r"\[server\] listen: expected HOST:PORT"):
        load_settings(config)


def test_an_unknown_section_names_its_line_and_the_section_it_was_likely_meant_to_be(
    tmp_path: Path,
):
    """A review: `[delivry]` was refused naming the file only, and listing every section."""
    config = tmp_path / "gateway.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n\n[delivry]\nworkers = 3\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert str(refused.value) == f"{config}:4: unknown section [delivry] (did you mean 'delivery'?)"


def test_a_misspelt_pack_is_refused_at_its_line_in_gateway_toml_listing_the_packs(
    tmp_path: Path,
):
    """A review: `pack = "teens-in-aii"` was reported against ".../rules/teens-in-aii.toml", a
    file the admin never wrote, not against the line in gateway.toml they did."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n[policy]\npack = "teens-in-aii"\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    said = str(refused.value)
    assert said.startswith(
        f"{config}:4: [policy] pack: no such policy pack 'teens-in-aii' "
        "(did you mean 'teens-in-ai'? available: bmt, brigantia, default, "
    )
    assert "rules/" not in said


def test_a_pack_given_as_a_path_that_is_not_there_is_refused_at_its_line(tmp_path: Path):
    config = tmp_path / "gateway.toml"
    config.write_text(f'[policy]\npack = "{tmp_path}/site-rules.toml"\n')
    with pytest.raises(ConfigError, match=rf"^{config}:2: \[policy\] pack: no such policy pack"):
        load_settings(config)


@pytest.mark.parametrize(
    ("section", "line", "said"),
    [
        (
            "[delivery]",
            'retry_max = "4000s"',
            "[delivery] retry_max: expected a number of seconds, like 4000 "
            "(a bare number: no quotes, no unit), got '4000s'",
        ),
        (
            "[server]",
            'timeout = "5m"',
            "[server] timeout: expected a number of seconds, like 300 "
            "(a bare number: no quotes, no unit), got '5m'",
        ),
        (
            "[web]",
            'lockout_minutes = "15m"',
            "[web] lockout_minutes: expected a number of minutes, like 15 "
            "(a bare number: no quotes, no unit), got '15m'",
        ),
        (
            "[web]",
            "session_hours = true",
            "[web] session_hours: expected a number of hours, like 8, got True",
        ),
    ],
)
def test_a_span_of_time_of_the_wrong_type_says_in_words_what_is_expected(
    tmp_path: Path, section: str, line: str, said: str
):
    """A review: `retry_max = "4000s"` said "expected float". Every span in gateway.toml is a
    bare number of the unit its name gives (seconds unless it says minutes or hours)."""
    config = tmp_path / "gateway.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n{section}\n{line}\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert str(refused.value) == f"{config}:4: {said}"


def test_a_pack_file_is_found_beside_the_configuration_wherever_serve_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """As the example configuration says, "Relative paths are relative to this file": the
    systemd unit starts the gateway in /var/lib/safeguard, its configuration is in /etc."""
    etc = tmp_path / "etc"
    (etc / "packs").mkdir(parents=True)
    (etc / "packs" / "ours.toml").write_text("")
    config = etc / "gateway.toml"
    config.write_text('[policy]\npack = "packs/ours.toml"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(config).pack == str(etc / "packs" / "ours.toml")
    config.write_text('[policy]\npack = "teens-in-ai"\n')  # a pack's name: from rules/
    assert load_settings(config).pack == "teens-in-ai"
    config.write_text('[policy]\npack = "missing.toml"\n')
    with pytest.raises(ConfigError, match=f"no such policy pack '{etc}/missing.toml'"):
        load_settings(config)


def test_an_installation_without_its_packs_folder_says_so(tmp_path: Path):
    """An admin's review: `pip install .` copies the package alone, leaving rules/ behind, and
    serve said "no such policy pack 'default' (available: )". The package alone, as installed
    so, in another folder."""
    site = tmp_path / "site-packages"
    shutil.copytree(
        Path(gateway.__file__).parent, site / "gateway", ignore=shutil.ignore_patterns("*.pyc")
    )
    config = tmp_path / "gateway.toml"
    config.write_text('[policy]\npack = "default"\n')
    said = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from gateway.config import load_settings; load_settings({str(config)!r})",
        ],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "rules is not there: install the gateway from its source folder" in said.stderr
