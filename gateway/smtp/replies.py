"""SMTP replies, named; every failure carries an RFC 3463 enhanced status code."""

from __future__ import annotations

TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
AUTH_THROTTLED = "421 4.7.0 Too many failed authentication attempts; try again later"
AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
NO_STORAGE = "452 4.3.1 Insufficient system storage"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
BAD_ADDRESS = "501 5.1.3 Bad recipient address syntax"
MESSAGE_TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
DATA_TIMEOUT = "421 4.4.2 Message not received in time; closing connection"
LINE_TOO_LONG = "500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)"

# aiosmtpd's own replies that lack an enhanced code, and what we say instead.
REWRITES: dict[bytes, bytes] = {
    b"552 Error: message size exceeds fixed maximum message size": MESSAGE_TOO_BIG.encode(),
    b"552 Error: Too much mail data": MESSAGE_TOO_BIG.encode(),
    b"500 Line too long (see RFC5321 4.5.3.1.6)": LINE_TOO_LONG.encode(),
    b"500 Command line too long": b"500 5.5.2 Command line too long",
    b"503 Error: need RCPT command": b"503 5.5.1 Error: need RCPT command",
    b"503 Error: need MAIL command": b"503 5.5.1 Error: need MAIL command",
    b"503 Error: nested MAIL command": b"503 5.5.1 Error: nested MAIL command",
    b"503 Error: send HELO first": b"503 5.5.1 Error: send HELO first",
}
