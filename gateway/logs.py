"""structlog as JSON lines on stderr: one event per SMTP transaction, never a message body."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def configure_logging(level: str = "info", *, json: bool = True) -> None:
    renderer: structlog.typing.Processor
    factory: structlog.typing.WrappedLogger
    binary = getattr(sys.stderr, "buffer", None)
    if json and binary is not None:
        # orjson renders a line in a third of the CPU time of json.dumps, and BytesLogger
        # writes it in one call: the relay writes two lines per message.
        renderer = structlog.processors.JSONRenderer(
            serializer=orjson.dumps, option=orjson.OPT_NON_STR_KEYS
        )
        factory = structlog.BytesLoggerFactory(binary)
    else:
        renderer = (
            structlog.processors.JSONRenderer()
            if json
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # aiosmtpd logs peers and commands at INFO through stdlib logging; keep only its warnings,
    # as JSON lines like the gateway's own (plain text among them broke an admin's parser).
    root = logging.getLogger()
    root.handlers[:] = [_AsStructlog()]
    root.setLevel(logging.WARNING)


# aiosmtpd 1.4 sets its own deprecated `Session.login_data` at every successful AUTH, and
# warns of it each time: nothing of ours, nothing an admin can act on.
_NOISE = ("Session.login_data is deprecated",)


class _AsStructlog(logging.Handler):
    """A library's log record (aiosmtpd's `mail.log`, asyncio's) as one structlog event."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if message.startswith(_NOISE):
                return
            fields: dict[str, object] = {"logger": record.name, "message": message[:2000]}
            if record.exc_info:  # aiosmtpd's "SMTP session exception": its traceback too
                fields["exc_info"] = record.exc_info
            structlog.get_logger(record.name).log(record.levelno, "library_log", **fields)
        except Exception:
            self.handleError(record)
