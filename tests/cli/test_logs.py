"""The relay's log: one JSON object per line on stderr, whatever a field holds."""

from __future__ import annotations

import json
import subprocess
import sys

# In a child process: structlog's configuration is process-wide.
SCRIPT = """
import structlog
from gateway.logs import configure_logging

class Thing:
    def __repr__(self):
        return "Thing()"

configure_logging("info")
log = structlog.get_logger("test")
log.info("smtp_transaction", mail_from="zoë@example.org", rcpts=2, duplicate=False)
log.info("odd_fields", keys={1: "one"}, thing=Thing(), missing=None)
log.debug("hidden")
log.warning("check_failed", error=repr(ValueError("bad")))
import logging
logging.getLogger("mail.log").warning("%r over limit for %s", ("10.0.0.9", 25), "RCPT")
logging.getLogger("mail.log").warning("Session.login_data is deprecated and will be removed")
logging.getLogger("mail.log").info("peer connected")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("mail.log").exception("SMTP session exception")
"""


def test_each_event_is_one_json_line_on_stderr():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, check=True, timeout=60
    )
    events = [json.loads(line) for line in result.stderr.decode("utf-8").splitlines()]
    assert [e["event"] for e in events] == [
        "smtp_transaction",
        "odd_fields",
        "check_failed",
        "library_log",
        "library_log",
    ]
    first, odd, warning, library, crashed = events
    assert "ZeroDivisionError" in crashed["exception"]  # a library's traceback is kept
    # aiosmtpd's own warnings as JSON too (an admin's review found plain text among the
    # lines), without the deprecation notice it gives itself at every AUTH.
    assert library["logger"] == "mail.log" and library["level"] == "warning"
    assert library["message"] == "('10.0.0.9', 25) over limit for RCPT"
    assert first["mail_from"] == "zoë@example.org" and first["rcpts"] == 2
    assert first["level"] == "info" and first["timestamp"].endswith("Z")
    # What JSON cannot hold is still logged: keys as text, objects as their repr.
    assert odd["keys"] == {"1": "one"} and odd["thing"] == "Thing()" and odd["missing"] is None
    assert warning["level"] == "warning" and warning["error"] == "ValueError('bad')"
    assert result.stdout == b""
