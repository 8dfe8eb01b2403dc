"""The console's jinja2 pages (templates/web/), rendered on the server; autoescaped."""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path

import jinja2

from gateway.notify.render import BUILTIN_TEMPLATES, local_time, short_time
from gateway.search.labels import finding_label, verdict_label

STATIC = BUILTIN_TEMPLATES / "web" / "static"


def pages_environment(zone: tzinfo, folder: Path = BUILTIN_TEMPLATES / "web") -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )

    def local(moment: datetime | None, style: str = "long") -> str:
        if moment is None:
            return ""
        return short_time(moment, zone) if style == "short" else local_time(moment, zone)

    env.filters["local"] = local
    env.filters["verdict_label"] = verdict_label
    env.filters["finding_label"] = finding_label
    env.globals["zone"] = str(zone)
    return env
