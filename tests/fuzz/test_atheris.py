"""Coverage-guided fuzzing (atheris) of the message parser and the policy stage.

Runs 10,000 inputs mutated from real-shaped messages here; `ATHERIS_RUNS=100000 make test`
for a longer run. Skipped where atheris does not install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.test_pipeline_fuzz import SEED

pytest.importorskip("atheris", reason="atheris does not install on this platform")

RUNS = int(os.environ.get("ATHERIS_RUNS", "10000"))
ROOT = Path(__file__).resolve().parents[2]
SEEDS = {
    "alternative.eml": SEED,
    "html-table.eml": (
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<table><tr><td>Text me on 07700 "
        b"900123<br>our little</td><td>secret</td></tr></table><blockquote>ok</blockquote>\r\n"
    ),
    "forwarded.eml": (
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\nSubject: Fwd\r\n"
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain\r\n'
        b"\r\nSee below x\r\n--m\r\nContent-Type: message/rfc822\r\n\r\nFrom: a@b.example\r\n"
        b"Subject: =?utf-8?b?w6k=?=\r\n\r\nInner.\r\n--m--\r\n"
    ),
}


@pytest.mark.timeout(600)
def test_coverage_guided_inputs_get_a_verdict_or_a_clear_refusal(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("atheris_harness.py")),
            f"-runs={RUNS}",
            "-seed=1",
            "-max_len=8192",
            "-timeout=20",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=580,
    )
    crashes = sorted(p.name for p in tmp_path.glob("crash-*")) + sorted(
        p.name for p in tmp_path.glob("timeout-*")
    )
    assert result.returncode == 0 and not crashes, (crashes, result.stderr[-3000:])
    assert f"Done {RUNS} runs" in result.stderr
