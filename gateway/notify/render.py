"""The one jinja2 environment for notices: organisation overrides first, then built-ins."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import jinja2

BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def make_environment(overrides: Sequence[Path] = ()) -> jinja2.Environment:
    """Templates are looked up in `overrides` (an organisation's own wording) before built-ins."""
    search = [str(p) for p in overrides if p.is_dir()] + [str(BUILTIN_TEMPLATES)]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.do"],
        # Templates are read once per process: without this every render stats each template's
        # file (and every file it extends or includes) to see whether it changed.
        auto_reload=False,
    )
    env.filters["local_time"] = local_time
    return env


def environment_for(pack: str, site: Path | None = None) -> jinja2.Environment:
    """Lookup order: the site's own folder, then the pack's wording (`templates/packs/NAME/`),
    then the built-ins. Each folder mirrors the built-in layout (notices/, findings/)."""
    folders = [site] if site is not None else []
    folders.append(BUILTIN_TEMPLATES / "packs" / Path(pack).stem)
    return make_environment(folders)


def local_time(value: str | datetime) -> str:
    """'Monday 23 November 2026 at 09:00' (in the zone the time carries: the organisation's)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{moment:%A} {moment.day} {moment:%B %Y} at {moment:%H:%M}"
