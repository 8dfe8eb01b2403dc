"""Coverage-guided fuzzing of parse + policy with atheris (libFuzzer), run by test_atheris.py.

Each input is a raw message submitted to two recipients (a 14-year-old and a parent); it
must get a verdict or a clear 5xx refusal, as in the hypothesis properties. Any other
exception is a crash: libFuzzer saves the input and exits non-zero. Arguments are
libFuzzer's (`-runs=N corpus_dir`).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from tests.fuzz.test_pipeline_fuzz import _prepare

RCPTS = ["sam.minor@home.example", "priya.shah@parents.example"]


def one_input(data: bytes) -> None:
    _prepare(data, RCPTS)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
