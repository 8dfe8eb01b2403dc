"""Queue ids: short, unique, sortable by time, safe in SMTP replies and file names."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZ"


def new_queue_id() -> str:
    value = (time.time_ns() // 1000) << 40 | int.from_bytes(os.urandom(5), "big")
    out = []
    while value:
        value, digit = divmod(value, len(_ALPHABET))
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))
