"""The one jinja2 environment for notices: organisation overrides first, then built-ins."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path

import jinja2

from gateway.store.records import as_aware

BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def make_environment(
    overrides: Sequence[Path] = (),
    console_url: str | None = None,
    zone: tzinfo | None = None,
) -> jinja2.Environment:
    """Templates are looked up in `overrides` (an organisation's own wording) before built-ins.
    `console_url`: the console's address as leads reach it, for links in their notices.
    `zone`: the organisation's, for notices whose caller holds only a UTC time (a delivery
    failure's arrival: the delivery worker knows the queue, not the organisation)."""
    search = [str(p) for p in overrides if p.is_dir()] + [str(BUILTIN_TEMPLATES)]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        # HTML notices are `*.html.j2`: a subject, a name or a remote server's reply comes from
        # outside and is escaped there; text notices and finding wording are not.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.do"],
        # Templates are read once per process: without this every render stats each template's
        # file (and every file it extends or includes) to see whether it changed.
        auto_reload=False,
    )
    env.filters["local_time"] = local_time
    env.globals["console_url"] = console_url
    env.globals["org_zone"] = zone
    return env


# Every notice the gateway may send; `findings/CODE.j2` for each check a pack uses is optional
# (findings/generic.j2 stands in).
NOTICE_TEMPLATES = (
    "notices/policy_bounce.txt.j2",
    "notices/policy_bounce.html.j2",
    "notices/deferral.txt.j2",
    "notices/changed.txt.j2",
    "notices/held_cancelled.txt.j2",
    "notices/dsl_alert.txt.j2",
    "notices/delivery_failed.txt.j2",
    "notices/delivery_failed.html.j2",
    "notices/digest.txt.j2",
    "notices/export_cover.html.j2",
    "findings/generic.j2",
)


def template_problems(env: jinja2.Environment, codes: Iterable[str]) -> list[str]:
    """Load (and so compile, once per process) every template the gateway may render: a
    missing one or a syntax error is found at start, not in the first bounce it would spoil."""
    problems = []
    names = list(NOTICE_TEMPLATES) + [f"findings/{code}.j2" for code in sorted(set(codes))]
    for name in names:
        try:
            env.get_template(name)
        except jinja2.TemplateNotFound:
            if not name.startswith("findings/") or name == "findings/generic.j2":
                problems.append(f"template {name}: missing")
        except jinja2.TemplateSyntaxError as exc:
            problems.append(f"template {exc.filename or name}:{exc.lineno}: {exc.message}")
        except UnicodeDecodeError as exc:  # a site's own wording saved in another encoding
            problems.append(f"template {name}: not UTF-8 text (byte {exc.start + 1})")
    return problems


def environment_for(
    pack: str,
    site: Path | None = None,
    console_url: str | None = None,
    zone: tzinfo | None = None,
) -> jinja2.Environment:
    """Lookup order: the site's own folder, then the pack's wording (`templates/packs/NAME/`),
    then the built-ins. Each folder mirrors the built-in layout (notices/, findings/)."""
    folders = [site] if site is not None else []
    folders.append(BUILTIN_TEMPLATES / "packs" / Path(pack).stem)
    return make_environment(folders, console_url, zone)


def local_time(value: str | datetime, zone: tzinfo | None = None) -> str:
    """'Monday 7 December 2026, 15:30': every time a notice shows a person, in one format (the
    console's and the export's too), so two never stand side by side in different shapes. In
    `zone` if given, else in the zone the time carries (the organisation's, as callers pass
    it); a time with no zone is UTC, as the archive keeps them (not the host's local time).
    Date headers stay RFC 5322 (`email.utils.format_datetime`)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if zone is not None:
        moment = as_aware(moment).astimezone(zone)
    return f"{moment:%A} {moment.day} {moment:%B %Y}, {moment:%H:%M}"


def short_time(value: datetime | None, zone: tzinfo) -> str:
    """'07 Dec 2026 15:30' in `zone`: the same moment as `local_time`, for tables and lists
    (the console's, an export's manifest). None: ""; a time with no zone is UTC."""
    if value is None:
        return ""
    return f"{as_aware(value).astimezone(zone):%d %b %Y %H:%M}"
