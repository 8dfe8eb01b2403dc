"""`gateway.toml`, parsed once into typed settings that are passed down.

Every error names the file, the key and (where the file has it) the line, so an IT admin can
fix a typo without reading code. Nothing else in the gateway reads configuration.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.policy.packs_dir import RULES_DIR, available_packs, names_a_file, pack_path

DEFAULT_PATH = "gateway.toml"

# `[server] event_loop`: what `gateway.eventloop` can run on.
EVENT_LOOPS = ("uvloop", "asyncio")


class ConfigError(ValueError):
    """A configuration problem, worded for the person editing the file."""


@dataclass(frozen=True)
class UpstreamSettings:
    scheme: str  # smtp | smtp+starttls | smtps | maildir | mx
    host: str = ""
    port: int = 0
    username: str | None = None
    password: str | None = None
    path: Path | None = None  # maildir
    validate_certs: bool = True
    timeout: float = 60.0

    @property
    def display(self) -> str:
        if self.scheme == "maildir":
            return f"maildir://{self.path}"
        if self.scheme == "mx":
            return "mx:"
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = "safeguard.localhost"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_listen: tuple[str, int] | None = None  # implicit TLS (submissions, port 465 style)
    max_message_size: int = 10_240_000
    max_recipients: int = 100
    timeout: float = 300.0
    data_timeout: float = 600.0
    parse_timeout: float = 30.0
    drain_timeout: float = 30.0  # seconds a stop waits for sessions in flight to finish
    min_free_disk: int | None = None  # bytes; default 1.5 x max_message_size
    # Relay processes sharing the listening port (SO_REUSEPORT), each with its own archive
    # writer and delivery worker: one Python process uses one core at most.
    processes: int = 1
    event_loop: str = "uvloop"  # or "asyncio" (gateway.eventloop)

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


@dataclass(frozen=True)
class AuthSettings:
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_failures: int = 5  # failed AUTH attempts per client address and login ...
    failure_window: float = 600.0  # ... within this many seconds, then 421 4.7.0

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted_networks)


@dataclass(frozen=True)
class DeliverySettings:
    # Upstream connections at once. Postfix allows 20 per destination; 16 lets delivery keep
    # up with intake on two processes (bench/results/throughput.md), 4 fell 25% behind.
    workers: int = 16
    retry_min: float = 300.0  # Postfix minimal_backoff_time
    retry_max: float = 4000.0  # Postfix maximal_backoff_time
    lifetime: float = 5 * 86400.0  # Postfix maximal_queue_lifetime
    lease: float = 600.0  # a claimed entry not finished in this time is retried by anyone
    poll_interval: float = 1.0


# What `[organisation]` may hold, in gateway.toml and in a pack (whose defaults the site's
# keys override): known here so that a misspelt key is refused against the file it is in.
ORGANISATION_KEYS = frozenset(
    {
        "name",
        "domains",
        "timezone",
        "office_hours",
        "bank_holidays",
        "dsl",
        "mailboxes",
        "own_phone_numbers",
        "own_addresses",
        "reject_in_session",
    }
)


@dataclass(frozen=True)
class OrganisationSettings:
    """The site's `[organisation]` table; each key set here wins over the pack's default."""

    domains: tuple[str, ...] = ()
    timezone: ZoneInfo | None = None
    name: str = ""
    # Other pack defaults the site overrides (office_hours, dsl, ...); the policy layer
    # validates them against the pack format.
    overrides: dict[str, Any] = field(default_factory=dict)
    # Where the site set them (gateway.toml, and each key's line): a value the policy layer
    # refuses is reported there, not against the pack whose default it replaced.
    source: Path | None = None
    lines: dict[str, int] = field(default_factory=dict)

    def set_here(self) -> frozenset[str]:
        """The `[organisation]` keys this site sets."""
        given = {"domains": self.domains, "timezone": self.timezone, "name": self.name}
        return frozenset(self.overrides) | {key for key, value in given.items() if value}


@dataclass(frozen=True)
class WebSettings:
    """The safeguarding leads' console (`[web]`); `listen` is Settings.web_listen."""

    # Staff addresses with read-only access: search and read; no review, release or export.
    auditors: tuple[str, ...] = ()
    # Cookies only over HTTPS. None: yes unless the console listens on loopback only (a
    # console reached from other machines belongs behind TLS).
    secure_cookies: bool | None = None
    session_hours: float = 8.0  # a working day; then sign in again
    # The console's address as leads reach it (https://safeguarding.example.org): alerts and
    # digests link to it. None: they name the archive reference only.
    url: str | None = None
    max_failures: int = 5  # failed sign-ins per address before it is locked out ...
    lockout_minutes: float = 15.0  # ... for this long


@dataclass(frozen=True)
class Settings:
    path: Path
    organisation: OrganisationSettings
    server: ServerSettings
    auth: AuthSettings
    upstream: UpstreamSettings
    delivery: DeliverySettings
    database_url: str
    pack: str
    mode: str  # enforce | monitor
    web_listen: tuple[str, int] | None
    api_listen: tuple[str, int] | None
    state_dir: Path
    demo_directory: bool = True  # load the demo directory into an empty database
    digest_at: time | None = time(7, 30)  # local time of the daily digest; None: not sent
    templates: Path | None = None  # the site's own notice wording, searched before the pack's
    web: WebSettings = field(default_factory=WebSettings)


def nearest(word: str, known: Iterable[str]) -> str | None:
    """The known name a misspelt `word` was most likely meant to be, if any is close."""
    near = difflib.get_close_matches(word, sorted(known), n=1)
    return near[0] if near else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """The hint after an unknown name: did you mean the nearest known one, else the known
    ones. Every "unknown key" the gateway reports (gateway.toml, a pack) says it this way."""
    names = sorted(known)
    near = nearest(word, names)
    return f"did you mean {near!r}?" if near else f"known: {', '.join(names)}"


def _section_line(text: str, section: str) -> int | None:
    """The line of `[section]` (or `[section.sub]`, `[[section]]`, `section.key = `, or a
    top-level `section = ` that should have been a table)."""
    name = re.escape(section)
    header = re.compile(rf"^\[\[?\s*{name}\s*(?:\.[^\]]*)?\]\]?\s*(?:#.*)?$|^{name}\s*[.=]")
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped
            if header.match(stripped):
                return number
        elif not current and header.match(stripped):
            return number
    return None


def _key_line(text: str, section: str, key: str) -> int | None:
    """Best effort: the line where `key` is set inside `[section]` (tomllib keeps no positions)."""
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]$", stripped)
        if header:
            current = header.group(1)
            continue
        if current == section and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return None


def _expected_span(key: str, default: Any, value: Any) -> str:
    """What a float setting takes, in words: a plain number of the unit its name gives
    (`lockout_minutes`, `session_hours`), else of seconds; no unit is read ("4000s", "30m")."""
    unit = next((u for u in ("minutes", "hours") if key.endswith(f"_{u}")), "seconds")
    said = f"expected a number of {unit}, like {default:g}"
    if isinstance(value, str):
        said += " (a bare number: no quotes, no unit)"
    return f"{said}, got {value!r}"


class _Reader:
    def __init__(self, path: Path, text: str, data: dict[str, Any]) -> None:
        self.path = path
        self.text = text
        self.data = data
        self.known: set[tuple[str, str]] = set()  # every key asked for, set or not

    def unknown_keys(self) -> None:
        """A key nothing reads is a typo (`auditor` for `auditors`) that would silently leave
        a default in place: refuse it, naming the line and the nearest known key."""
        for section, table in self.data.items():
            if not isinstance(table, dict):
                continue
            for key in table:
                if (section, key) in self.known:
                    continue
                names = (k for s, k in self.known if s == section)
                raise self.error(section, key, f"unknown key ({did_you_mean(key, names)})")

    def refuse_typo_of(self, section: str, key: str) -> None:
        """When `key` is not set and a key that is nothing else's looks like it (`retry_minn`),
        that is the mistake to name, not the value the default then clashes with."""
        table = self.table(section)
        if key in table:
            return
        for written in table:
            if (section, written) not in self.known and nearest(written, [key]) == key:
                raise self.error(section, written, f"unknown key (did you mean {key!r}?)")

    def error(self, section: str, key: str, reason: str) -> ConfigError:
        line = _key_line(self.text, section, key)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: [{section}] {key}: {reason}")

    def table(self, section: str) -> dict[str, Any]:
        value = self.data.get(section, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: [{section}] must be a table")
        return value

    def get(
        self,
        section: str,
        key: str,
        kind: type | tuple[type, ...],
        default: Any,
        within: tuple[float, float] | None = None,
    ) -> Any:
        """`within`: the least and most a number may be - what a person could mistype into a
        crash later (nan, 1e20 seconds, a billion workers) is refused here, naming the line."""
        self.known.add((section, key))
        value = self.table(section).get(key, default)
        if value is default:
            return value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            if kind is float:  # every float setting is a span of time, its unit in its name
                raise self.error(section, key, _expected_span(key, default, value))
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self.error(section, key, f"expected {names}, got {value!r}")
        if within is not None and not within[0] <= value <= within[1]:  # also false for nan
            least, most = within
            raise self.error(section, key, f"expected {least:g} to {most:g}, got {value!r}")
        return value

    def listen(self, section: str, key: str, default: str | None) -> tuple[str, int] | None:
        value = self.get(section, key, str, default)
        if value is None or value == "":
            return None
        host, _, port = value.rpartition(":") if ":" in value else ("", ":", value)
        if not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
            raise self.error(section, key, f"expected HOST:PORT, got {value!r}")
        host = host.strip("[]")
        if not host:
            # ":3525" means every interface to most servers' admins (and to socket.bind), but
            # was read as loopback: neither guess is safe for a relay or the console, so ask.
            raise self.error(
                section,
                key,
                f"{value!r} names no host: write "
                f'"0.0.0.0:{port}" to listen on every interface, '
                f'or "127.0.0.1:{port}" for this machine only',
            )
        return host, int(port)


# A domain or host name: labels of letters, digits and hyphens (an IDN's letters too) between
# dots; no "@", no spaces, no empty label ("@school.example", "not a domain", "school..example").
_DOMAIN = re.compile(r"[^\W_]([\w-]*[^\W_])?(\.[^\W_]([\w-]*[^\W_])?)*\.?")


def _hostname(r: _Reader) -> str:
    """The name the gateway gives itself (greeting, Received:, bounces' From and Message-ID)."""
    name = r.get("server", "hostname", str, "safeguard.localhost").strip()
    if not _DOMAIN.fullmatch(name):
        raise r.error(
            "server",
            "hostname",
            f'expected a host name such as "mail.school.example", got {name!r}',
        )
    return name


def _check_pack_exists(r: _Reader, pack: str) -> None:
    """`[policy] pack` names a pack in rules/ (or a pack file): a typo is refused here, at its
    line in gateway.toml, with the packs there are, not later against a rules/ path."""
    if pack_path(pack).exists():
        return
    if not names_a_file(pack) and not RULES_DIR.is_dir():
        # `pip install .` copies the package without rules/ and templates/ beside it.
        raise r.error(
            "policy",
            "pack",
            f"the policy packs folder {RULES_DIR} is not there: install the gateway from its "
            "source folder with `pip install -e` (deploy/README.md)",
        )
    names = available_packs()
    near = nearest(pack, names)
    hint = f"did you mean {near!r}? " if near else ""
    raise r.error(
        "policy",
        "pack",
        f"no such policy pack {pack!r} ({hint}available: {', '.join(names)})",
    )


def parse_upstream(url: str) -> UpstreamSettings:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "maildir":
        path = unquote((parts.netloc or "") + parts.path)
        if not path:
            raise ValueError("maildir:// needs a path, e.g. maildir:///var/mail/out")
        return UpstreamSettings(scheme="maildir", path=Path(path))
    if scheme == "mx":
        if parts.netloc or parts.path:
            raise ValueError(f"{url!r}: mx: takes nothing after it (write just mx:)")
        return UpstreamSettings(scheme="mx")
    if scheme not in ("smtp", "smtp+starttls", "smtps"):
        raise ValueError(
            f"unknown scheme {scheme!r}: use smtp://, smtp+starttls://, smtps://, maildir:// or mx:"
        )
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    default_port = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}[scheme]
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    return UpstreamSettings(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read `gateway.toml` (or `$SAFEGUARD_CONFIG`); a missing default file means all defaults."""
    explicit = path is not None or "SAFEGUARD_CONFIG" in os.environ
    config_path = Path(path or os.environ.get("SAFEGUARD_CONFIG") or DEFAULT_PATH)
    if config_path.exists():
        text = read_text_file(config_path, ConfigError)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    elif explicit:
        raise ConfigError(f"{config_path}: no such configuration file")
    else:
        text, data = "", {}
    return settings_from_dict(data, config_path, text)


_DAY = 86_400.0
# Bounds for `_Reader.get(..., within=...)`.
_SECONDS = (0.001, _DAY)
_LONG = (0.001, 366 * _DAY)  # retry and lifetime spans, lockout windows
_COUNT = (1, 100_000)


def read_text_file(path: Path, error: Callable[[str], Exception]) -> str:
    """A UTF-8 text file's contents; what stops it being read, as `error` naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read: {exc.strerror or exc}") from None


def read_at_most(path: str | Path, limit: int) -> bytes | None:
    """A file's bytes, or None if it holds more than `limit`: read no further than that, for
    a wrong path (`/dev/zero`, a disk image) would never end or fill memory. OSError passes."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


def settings_from_dict(data: dict[str, Any], path: Path, text: str = "") -> Settings:
    r = _Reader(path, text, data)
    base = path.resolve().parent

    known = {
        "organisation",
        "server",
        "auth",
        "upstream",
        "database",
        "web",
        "api",
        "policy",
        "delivery",
        "directory",
        "notify",
    }
    for section in data:
        if section not in known:
            line = _section_line(text, section)
            where = f"{path}:{line}" if line else str(path)
            raise ConfigError(
                f"{where}: unknown section [{section}] ({did_you_mean(section, known)})"
            )

    state_dir = Path(r.get("database", "state_dir", str, "var"))
    if not state_dir.is_absolute():
        state_dir = base / state_dir

    org_table = dict(r.table("organisation"))
    r.known.update(("organisation", key) for key in ORGANISATION_KEYS)
    given = r.get("organisation", "domains", list, [])
    # "school.example." is school.example: addresses never end in the root's dot.
    domains = tuple(d.lower().strip().rstrip(".") if isinstance(d, str) else d for d in given)
    for domain in domains:
        if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
            raise r.error(
                "organisation",
                "domains",
                f'expected domain names such as "school.example", got {domain!r}',
            )
    tz_name = r.get("organisation", "timezone", str, None)
    tz = None
    if tz_name is not None:
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise r.error("organisation", "timezone", f"unknown time zone {tz_name!r}") from None
    for key in ("domains", "timezone"):
        org_table.pop(key, None)
    organisation = OrganisationSettings(
        domains=domains,
        timezone=tz,
        name=str(org_table.pop("name", "")),
        overrides=org_table,
        source=path,
        lines={
            key: line
            for key in ORGANISATION_KEYS
            if (line := _key_line(r.text, "organisation", key)) is not None
        },
    )

    listen = r.listen("server", "listen", "127.0.0.1:2525")
    assert listen is not None
    cert = r.get("server", "tls_cert", str, None)
    key = r.get("server", "tls_key", str, None)
    if bool(cert) != bool(key):
        raise r.error(
            "server", "tls_cert" if not cert else "tls_key", "tls_cert and tls_key go together"
        )
    for name, value in (("tls_cert", cert), ("tls_key", key)):
        if value and not (base / value).exists():
            raise r.error("server", name, f"file {value!r} does not exist")
    server = ServerSettings(
        host=listen[0],
        port=listen[1],
        hostname=_hostname(r),
        tls_cert=(base / cert) if cert else None,
        tls_key=(base / key) if key else None,
        tls_listen=r.listen("server", "tls_listen", None),
        max_message_size=r.get("server", "max_message_size", int, 10_240_000, (1_000, 2**31)),
        max_recipients=r.get("server", "max_recipients", int, 100, _COUNT),
        timeout=r.get("server", "timeout", float, 300.0, _SECONDS),
        data_timeout=r.get("server", "data_timeout", float, 600.0, _SECONDS),
        parse_timeout=r.get("server", "parse_timeout", float, 30.0, _SECONDS),
        drain_timeout=r.get("server", "drain_timeout", float, 30.0, _SECONDS),
        min_free_disk=r.get("server", "min_free_disk", int, None, (0, 2**62)),
        processes=r.get("server", "processes", int, 1, (1, 64)),
        event_loop=r.get("server", "event_loop", str, "uvloop"),
    )
    if server.event_loop not in EVENT_LOOPS:
        expected = " or ".join(repr(k) for k in EVENT_LOOPS)
        raise r.error("server", "event_loop", f"expected {expected}, got {server.event_loop!r}")
    if server.processes > 1 and server.port == 0:
        raise r.error("server", "processes", "several processes need a fixed listen port")
    if server.tls_listen and not server.tls_enabled:
        raise r.error("server", "tls_listen", "an implicit-TLS listener needs tls_cert and tls_key")

    nets = []
    for item in r.get("auth", "trusted_networks", list, ["127.0.0.0/8", "::1/128"]):
        try:
            nets.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise r.error("auth", "trusted_networks", f"{item!r} is not a network") from None
    auth = AuthSettings(
        trusted_networks=tuple(nets),
        max_failures=r.get("auth", "max_failures", int, 5, _COUNT),
        failure_window=r.get("auth", "failure_window", float, 600.0, _LONG),
    )

    upstream_url = r.get("upstream", "url", str, "maildir://var/maildir")
    try:
        upstream = parse_upstream(upstream_url)
    except ValueError as exc:
        raise r.error("upstream", "url", str(exc)) from None
    if upstream.path is not None and not upstream.path.is_absolute():
        upstream = UpstreamSettings(scheme="maildir", path=base / upstream.path)
    upstream = UpstreamSettings(
        **{
            **upstream.__dict__,
            "validate_certs": r.get("upstream", "validate_certs", bool, True),
            "timeout": r.get("upstream", "timeout", float, 60.0, _SECONDS),
        }
    )

    retry_min = r.get("delivery", "retry_min", float, 300.0, _LONG)
    retry_max = r.get("delivery", "retry_max", float, 4000.0, _LONG)
    if retry_max < retry_min:
        r.refuse_typo_of("delivery", "retry_min")
        r.refuse_typo_of("delivery", "retry_max")
        # Named where it was set: the key in the file, not the default it met.
        key = "retry_max" if "retry_max" in r.table("delivery") else "retry_min"
        raise r.error(
            "delivery",
            key,
            f"retry_max ({retry_max:g}) is less than retry_min ({retry_min:g}); set both",
        )
    delivery = DeliverySettings(
        workers=r.get("delivery", "workers", int, DeliverySettings.workers, (1, 1_000)),
        retry_min=retry_min,
        retry_max=retry_max,
        lifetime=r.get("delivery", "lifetime", float, 5 * 86400.0, _LONG),
        lease=r.get("delivery", "lease", float, 600.0, _LONG),
        poll_interval=r.get("delivery", "poll_interval", float, 1.0, _LONG),
    )

    db_url = r.get("database", "url", str, "")
    if not db_url:
        db_url = f"sqlite:///{state_dir / 'archive.db'}"
    elif db_url in ("sqlite://", "sqlite:///:memory:"):
        raise r.error("database", "url", "an in-memory database keeps nothing: name a file")
    elif db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        relative = db_url.removeprefix("sqlite:///")
        if relative:
            db_url = f"sqlite:///{base / relative}"

    mode = r.get("policy", "mode", str, "enforce")
    if mode not in ("enforce", "monitor"):
        raise r.error("policy", "mode", f"expected 'enforce' or 'monitor', got {mode!r}")

    demo = r.get("directory", "demo", bool, True)
    templates_dir = r.get("notify", "templates", str, None)
    if templates_dir and not (base / templates_dir).is_dir():
        raise r.error("notify", "templates", f"folder {templates_dir!r} does not exist")
    digest_text = r.get("notify", "digest_at", str, "07:30")
    digest_at = None
    if digest_text:
        try:
            digest_at = time.fromisoformat(digest_text)
        except ValueError:
            raise r.error("notify", "digest_at", f"expected HH:MM, got {digest_text!r}") from None
    auditors = r.get("web", "auditors", list, [])
    if not all(isinstance(a, str) and "@" in a for a in auditors):
        raise r.error("web", "auditors", "expected a list of e-mail addresses")
    web = WebSettings(
        auditors=tuple(a.strip().lower() for a in auditors),
        secure_cookies=r.get("web", "secure_cookies", bool, None),
        session_hours=r.get("web", "session_hours", float, 8.0, (0.01, 24 * 7)),
        max_failures=r.get("web", "max_failures", int, 5, _COUNT),
        # How long a lockout lasts: 0 would switch it off without a word.
        lockout_minutes=r.get("web", "lockout_minutes", float, 15.0, (0.01, 366 * 24 * 60)),
        url=(r.get("web", "url", str, "") or "").rstrip("/") or None,
    )
    if web.url is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", web.url):
        raise r.error("web", "url", f"expected an http:// or https:// address, got {web.url!r}")
    pack = r.get("policy", "pack", str, "default")
    if names_a_file(pack):
        pack = str(base / pack)  # as the file's other paths: not wherever serve started
    _check_pack_exists(r, pack)
    web_listen = r.listen("web", "listen", "127.0.0.1:8025")
    api_listen = r.listen("api", "listen", "127.0.0.1:8026")
    r.unknown_keys()
    return Settings(
        path=path,
        organisation=organisation,
        server=server,
        auth=auth,
        upstream=upstream,
        delivery=delivery,
        database_url=db_url,
        pack=pack,
        mode=mode,
        web_listen=web_listen,
        api_listen=api_listen,
        state_dir=state_dir,
        demo_directory=demo,
        digest_at=digest_at,
        templates=(base / templates_dir) if templates_dir else None,
        web=web,
    )
