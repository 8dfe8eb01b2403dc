"""Who runs a command, for the audit log: the local user, or the person behind sudo."""

from __future__ import annotations

import getpass
import os
from datetime import datetime
from typing import Any

import click

from gateway.clock import SystemClock
from gateway.store.audit import AuditNote


def note_new_archive(database: str) -> None:
    """`open_admin`'s `made`: said on stderr, as a command run with a configuration copied away
    from its `state_dir` changes an archive no gateway reads."""
    click.echo(
        f"safeguard: note: there was no archive at {database}; a new, empty one was made "
        "there (if the gateway runs elsewhere, name its configuration with --config)",
        err=True,
    )


def local_user() -> str:
    """The operator at the console, who is audited when no --as is given. Run through sudo
    (as root, or as the gateway's own account), the person who ran sudo: "alice (as root)"."""
    try:
        user = getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (some containers)
        user = "unknown-local-user"
    person = os.environ.get("SUDO_USER", "")
    return f"{person} (as {user})" if person and person != user else user


def audit_note(
    action: str,
    *,
    query: str,
    detail: dict[str, Any],
    at: datetime | None = None,
    actor: str | None = None,
) -> AuditNote:
    """`action` by the local user (or `actor`, a lead named with --as), from the command line
    (`detail.via` = `cli`), for the transaction of the change it records."""
    return AuditNote(
        actor=actor or local_user(),
        action=action,
        at=at or SystemClock().now(),
        query=query,
        detail={"via": "cli", **detail},
    )
