"""Relay throughput (issue 7): the gateway against a bare aiosmtpd relay and against Postfix.

One run, on this machine, over loopback, with Postfix's `smtp-source` as the client and
`smtp-sink` as the upstream of every relay:

  a           bench/bare_relay.py: aiosmtpd, no checks, no archive; forwards each message
              upstream (pooled aiosmtplib connections) before answering 250
  u           a on uvloop (bare_relay.py --loop uvloop), the event loop c runs on by default
              (`[server] event_loop`): what the loop alone is worth to a bare relay. Context
              for c/a, whose a stays on Python's own loop as the issue defines it
  a2          a in as many processes as c (--processes, one port): what a bare aiosmtpd relay
              can do with both cores; the ceiling of any relay built on this stack
  s           a2 with the gateway's own subclass of aiosmtpd's SMTP class (bare_relay.py
              --protocol gateway) on c's event loop (uvloop): SMTP in and out as c does them,
              nothing else. The floor of c's cost in "What bounds c" below
  p           s + the gateway's policy stage: bench/bare_relay.py --policy, as many
              processes as c, on c's protocol class and event loop, running the gateway's
              own parse, rules and plan on each message on the event loop and forwarding
              what the plan sends; nothing is archived or queued. Not a product: it splits
              c's cost into the policy work (p against s) and the archive, queue and
              delivery worker (c against p)
  b           Postfix as a durable relay: a private instance (own config, queue and data
              directories under /var/tmp/safeguard-bench/postfix), default durability
              (the queue file is fsynced before 250), relayhost = the sink
  c-sqlite    `safeguard serve` with the teens-in-ai pack, a directory of 5,000 contacts,
              archive + queue in SQLite (WAL, synchronous=FULL)
  c-postgres  the same on PostgreSQL (a fresh database on 127.0.0.1:5432, user postgres)

For each system and run: a fresh sink, a fresh relay (and database); the client mix (below)
sends `--messages` over `--sessions` parallel sessions, one message per connection (how
submission clients behave); then a latency probe. Reported per system, as medians of
`--runs` runs:

  msg/s e2e     messages / (first connect .. the sink has counted every message)
  msg/s intake  messages / smtp-source's wall time (every 250 received)
  added p50/p99 the relay's reply time after the final "." minus smtp-sink's own, measured
                by a small client at a fixed moderate rate (`--probe-rate`), one message per
                connection, after the load has drained
  peak memory   the largest sum of PSS (resident memory, shared pages divided among their
                users) over the relay's whole process tree; RSS sums in the per-run lines

Message mix (every relay gets the same traffic; the body is ~5 kB of ordinary prose, no
Message-ID, so each message is archived and delivered, never deduplicated):
  60 %  to adult volunteers in the directory, a different one per message (smtp-source -N):
        delivered, no findings
  30 %  to a 14-year-old and their parent (smtp-source -r 2): delivered, flagged (no second
        member of staff copied)
  10 %  to 14-year-olds without their parent (-N): refused by the policy; the sender gets a
        bounce, which goes upstream in its place
Every submission therefore produces exactly one message at the sink, which the benchmark
checks.

Rerun (root, with Debian's `postfix` installed, or installed here via apt-get when root):

    .venv/bin/python bench/throughput.py                       # everything, 5 rounds, 8-10 min
    .venv/bin/python bench/throughput.py --only c-sqlite --runs 1 --messages 1000
    .venv/bin/python bench/throughput.py --profile /tmp/prof   # py-spy flame graphs of c

Writes bench/results/throughput.md (unless --no-write). Without root: install postfix
(`DEBIAN_FRONTEND=noninteractive apt-get install postfix`, "No configuration"), and run as
root anyway, since Postfix's master needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
WORK = Path("/var/tmp/safeguard-bench")  # fixed: Postfix must list it in its default main.cf
POSTFIX_DIR = WORK / "postfix"
SYSTEMS = ("a", "u", "a2", "s", "p", "b", "c-sqlite", "c-postgres")
PACK = "teens-in-ai"
DOMAIN = "teensinai.example"
SENDER = f"alex.bench@{DOMAIN}"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ADULTS = 3000  # contacts 1p@volunteers.example .. 3000p@volunteers.example
MINORS = 1999  # contacts 1m@pupils.example ..; plus kid@home.example = 5,000 contacts


# --- tools ----------------------------------------------------------------------------------
def ensure_postfix() -> None:
    """smtp-source, smtp-sink and postfix; installed from Debian when we may (root + apt-get)."""
    if all(shutil.which(t) for t in ("smtp-source", "smtp-sink", "postfix")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(
            "bench: needs Debian's postfix package (smtp-source, smtp-sink): run as root, or\n"
            "  echo 'postfix postfix/main_mailer_type select No configuration' | "
            "debconf-set-selections\n"
            "  DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
        )
    print("bench: installing Debian's postfix (No configuration)...", file=sys.stderr)
    subprocess.run(
        ["debconf-set-selections"],
        input=b"postfix postfix/main_mailer_type select No configuration\n",
        check=True,
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postfix"], check=True, env=env)
    # The package must not leave a system Postfix answering on port 25.
    subprocess.run(["postfix", "stop"], capture_output=True, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process; PSS shares each shared page among the processes mapping it,
    so a sum over Postfix's many processes is not inflated by the libraries they all map."""
    found = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Rss", "Pss"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    return found.get("Rss", 0), found.get("Pss", 0)


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass(frozen=True)
class MachineTimes:
    """The whole machine's CPU time so far (every core, every process, the kernel), from
    /proc/stat: what the client, the sink, a database server and the relay used together."""

    busy: float  # seconds: user, nice, system, irq, softirq
    idle: float  # idle and iowait
    steal: float  # taken by the hypervisor for other guests
    own: float  # this benchmark's own process (sampling /proc, polling the sink): not counted

    @classmethod
    def now(cls) -> MachineTimes:
        with open("/proc/stat") as f:
            user, nice, system, idle, iowait, irq, softirq, steal = (
                int(v) for v in f.readline().split()[1:9]
            )
        own = resource.getrusage(resource.RUSAGE_SELF)
        tick = os.sysconf("SC_CLK_TCK")
        return cls(
            (user + nice + system + irq + softirq) / tick,
            (idle + iowait) / tick,
            steal / tick,
            own.ru_utime + own.ru_stime,
        )

    def __sub__(self, other: MachineTimes) -> MachineTimes:
        return MachineTimes(
            self.busy - other.busy,
            self.idle - other.idle,
            self.steal - other.steal,
            self.own - other.own,
        )


class MemorySampler:
    """Peaks of the summed RSS and PSS of a process and all its descendants (every 100 ms),
    and the CPU time they used meanwhile (processes that exit keep their last sample)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kb = 0
        self.peak_kb = 0  # PSS
        self._cpu: dict[int, float] = {}
        self._cpu_start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_seconds(self) -> float:
        return sum(v - self._cpu_start.get(p, 0.0) for p, v in self._cpu.items())

    def mark(self) -> None:
        """Count CPU time from now on."""
        self._sample()
        self._cpu_start = dict(self._cpu)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.1)

    def _sample(self) -> None:
        tree = _children()
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(tree.get(pid, ()))
        sizes = [_memory_kb(p) for p in pids]
        self.peak_rss_kb = max(self.peak_rss_kb, sum(rss for rss, _ in sizes))
        self.peak_kb = max(self.peak_kb, sum(pss for _, pss in sizes))
        for p in pids:
            cpu = _cpu_seconds(p)
            if cpu:
                self._cpu[p] = cpu


class Sink:
    """`smtp-sink -c`: discards, and writes a running `mesg=N` counter we read for arrivals."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.out = workdir / f"sink-{self.port}.out"
        self._file = open(self.out, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{self.port}", "1024"],
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc)

    def count(self) -> int:
        with open(self.out, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 200))
            found = re.findall(rb"mesg=(\d+)", f.read())
        return int(found[-1]) if found else 0

    def wait_for(self, expected: int, timeout: float) -> float:
        """Monotonic time at which `expected` messages had arrived (raises on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= expected:
                return time.monotonic()
            time.sleep(0.005)
        raise RuntimeError(f"sink counted {self.count()} of {expected} messages in {timeout}s")

    def stop(self) -> None:
        stop(self.proc, 5)
        self._file.close()


# --- traffic ---------------------------------------------------------------------------------
PROSE = [
    "Thank you all for a brilliant first week of the programme. The teams have settled in "
    "well, and the mentors have been impressed by how quickly everyone picked up the basics "
    "of data cleaning and model evaluation.",
    "Next week we move from the practice datasets to the challenge brief. Each team will "
    "present a two-minute pitch on Thursday afternoon in the main hall, and the judges will "
    "give written feedback by Friday.",
    "Please bring a charged laptop and its charger on Monday. The building opens at 09:00 and "
    "the first session starts at 09:30 in room 4; lunch is provided, but tell us in advance "
    "about any dietary requirements so that the caterers can plan.",
    "The reading list for the week is on the programme portal under Resources. The two short "
    "articles on fairness in classification are the most useful preparation for the ethics "
    "workshop, which runs on Wednesday morning.",
    "If a session clashes with an exam or another commitment, reply to this message and we "
    "will arrange a catch-up. Recordings of the talks are posted to the portal the same "
    "evening, together with the slides and the exercise notebooks.",
    "A reminder about the showcase: families are warmly invited, and the event finishes at "
    "16:00. The schedule, the map of the venue and the accessibility information are "
    "attached to the programme page rather than to this message.",
]


def body_text(size: int = 5000) -> str:
    paragraphs, total, n = [], 0, 0
    while total < size:
        text = PROSE[n % len(PROSE)]
        paragraphs.append(text)
        total += len(text) + 2
        n += 1
    return "Hello,\n\n" + "\n\n".join(paragraphs) + "\n\nKind regards,\nAlex Bench\nTeens in AI\n"


@dataclass(frozen=True)
class Group:
    name: str
    share: float
    to: str  # smtp-source -t; with -N a number is prepended per message
    options: tuple[str, ...]
    header_to: str
    header_cc: str = ""

    def recipients(self, n: int) -> list[str]:
        """The envelope recipients of message n (1-based), as smtp-source generates them."""
        if "-N" in self.options:
            return [f"{n}{self.to}"]
        if "-r" in self.options:
            count = int(self.options[self.options.index("-r") + 1])
            return [self.to, *(f"{i}{self.to}" for i in range(2, count + 1))]
        return [self.to]

    def message(self, subject: str, size: int) -> str:
        lines = [f"From: Alex Bench <{SENDER}>", f"To: {self.header_to}"]
        if self.header_cc:
            lines.append(f"Cc: {self.header_cc}")
        lines += [
            f"Subject: {subject}",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "",
            body_text(size),
        ]
        return "\n".join(lines)


GROUPS = (
    Group("adult", 0.6, "p@volunteers.example", ("-N",), "undisclosed-recipients:;"),
    Group(
        "minor+parent",
        0.3,
        "kid@home.example",
        ("-r", "2"),
        "Kim Kid <kid@home.example>",
        "Pat Kid <2kid@home.example>",
    ),
    Group("minor-no-parent", 0.1, "m@pupils.example", ("-N",), "undisclosed-recipients:;"),
)


def split(total: int, shares: Sequence[float]) -> list[int]:
    parts = [max(1, round(total * s)) for s in shares]
    parts[0] += total - sum(parts)
    return parts


def write_directory(path: Path) -> tuple[Path, Path]:
    """5,000 contacts (3,000 adult volunteers, 2,000 under-18s) and a few staff."""
    today = date.today()
    adult = date(today.year - 30, 1, 15).isoformat()
    minor = date(today.year - 14, 1, 15).isoformat()
    contacts = path / "contacts.csv"
    with open(contacts, "w", encoding="utf-8") as f:
        f.write("email,name,date_of_birth,category,guardian_emails,school_emails,consent\n")
        for n in range(1, ADULTS + 1):
            f.write(f"{n}p@volunteers.example,Volunteer {n},{adult},volunteer,,,yes\n")
        f.write(f"kid@home.example,Kim Kid,{minor},participant,2kid@home.example,,yes\n")
        for n in range(1, MINORS + 1):
            f.write(
                f"{n}m@pupils.example,Pupil {n},{minor},participant,"
                f"{n}m.parent@parents.example,office@school.example,yes\n"
            )
    staff = path / "staff.csv"
    with open(staff, "w", encoding="utf-8") as f:
        f.write("email,name,safeguarding_level,training_expires,dbs_checked,dsl\n")
        expires = date(today.year + 2, 6, 30).isoformat()
        f.write(f"{SENDER},Alex Bench,2,{expires},yes,no\n")
        f.write(f"safeguarding@{DOMAIN},Dana Lead,4,{expires},yes,yes\n")
        for n in range(1, 41):
            f.write(f"staff{n}@{DOMAIN},Staff {n},{n % 5},{expires},yes,no\n")
    return contacts, staff


def import_directory(config: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
    """The benchmark directory, imported through `safeguard directory import` as an admin would."""
    contacts, staff = write_directory(workdir)
    for kind, path in (("staff", staff), ("contacts", contacts)):
        subprocess.run(
            [
                PYTHON,
                "-m",
                "gateway",
                "--config",
                str(config),
                "directory",
                "import",
                kind,
                str(path),
            ],
            check=True,
            capture_output=True,
            cwd=workdir,
            env=env,
        )


def run_load(port: int, files: dict[str, Path], messages: int, sessions: int) -> float:
    """smtp-source for every group at once; returns the wall time until the last 250."""
    counts = split(messages, [g.share for g in GROUPS])
    conns = split(sessions, [g.share for g in GROUPS])
    procs = []
    start = time.monotonic()
    for group, count, conn in zip(GROUPS, counts, conns, strict=True):
        procs.append(
            subprocess.Popen(
                [
                    "smtp-source",
                    "-s",
                    str(conn),
                    "-m",
                    str(count),
                    "-F",
                    str(files[group.name]),
                    "-f",
                    SENDER,
                    "-t",
                    group.to,
                    *group.options,
                    f"127.0.0.1:{port}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    failed = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failed.append(out.decode(errors="replace").strip()[-500:])
    elapsed = time.monotonic() - start
    if failed:
        raise RuntimeError("smtp-source failed: " + " | ".join(failed))
    return elapsed


# --- latency probe ----------------------------------------------------------------------------
async def _reply(reader: asyncio.StreamReader, code: int) -> None:
    while True:
        line = await reader.readline()
        if not line:
            raise RuntimeError("connection closed")
        if line[3:4] != b"-":
            if int(line[:3]) != code:
                raise RuntimeError(f"expected {code}, got {line!r}")
            return


async def _one(port: int, rcpts: list[str], data: bytes) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await _reply(reader, 220)
        writer.write(b"EHLO probe.localhost\r\n")
        await _reply(reader, 250)
        writer.write(f"MAIL FROM:<{SENDER}>\r\n".encode())
        await _reply(reader, 250)
        for rcpt in rcpts:
            writer.write(f"RCPT TO:<{rcpt}>\r\n".encode())
            await _reply(reader, 250)
        writer.write(b"DATA\r\n")
        await _reply(reader, 354)
        writer.write(data)
        await writer.drain()
        writer.write(b".\r\n")
        started = time.perf_counter()
        await _reply(reader, 250)
        elapsed = time.perf_counter() - started
        writer.write(b"QUIT\r\n")
        with contextlib.suppress(RuntimeError):
            await _reply(reader, 221)
        return elapsed
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def probe(port: int, count: int, rate: float, size: int) -> list[float]:
    """Reply times after the final dot, one connection per message, started at `rate`/s."""
    plan = []
    for i in range(count):
        group = GROUPS[0] if i % 10 < 6 else GROUPS[1] if i % 10 < 9 else GROUPS[2]
        text = group.message("Latency probe", size).replace("\n", "\r\n")
        data = (
            "".join(
                "." + line if line.startswith(".") else line for line in text.splitlines(True)
            ).encode()
            + b"\r\n"
        )
        plan.append((group.recipients(i + 1), data))

    async def main() -> list[float]:
        start = time.perf_counter()

        async def at(i: int) -> float:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            rcpts, data = plan[i]
            return await _one(port, rcpts, data)

        return list(await asyncio.gather(*(at(i) for i in range(count))))

    return asyncio.run(main())


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- the relays ------------------------------------------------------------------------------
class Relay:
    name = ""
    port = 0
    proc: subprocess.Popen[bytes]

    def start(self, sink: Sink, workdir: Path) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        stop(self.proc)


class BareRelay(Relay):
    name = "a"
    extra: tuple[str, ...] = ()
    env: dict[str, str] | None = None

    def start(self, sink: Sink, workdir: Path) -> None:
        self.port = free_port()
        self.log = open(workdir / "bare.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "bench" / "bare_relay.py"),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--upstream",
                f"127.0.0.1:{sink.port}",
                *self.extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=self.env,
        )
        wait_port(self.port, self.proc)


class UvloopRelay(BareRelay):
    """System u: the bare relay on uvloop, the event loop c runs on."""

    name = "u"
    extra = ("--loop", "uvloop")


class BareRelays(BareRelay):
    """System a2: the bare relay in as many processes as c."""

    name = "a2"

    def __init__(self, processes: int) -> None:
        self.extra = ("--processes", str(processes))


class GatewayProtocolRelays(BareRelay):
    """System s: the bare relay on the gateway's own SMTP protocol class, as many processes
    as c: SMTP in and out as the gateway does them, without its policy, archive or queue."""

    name = "s"

    def __init__(self, processes: int, source: Path | None = None) -> None:
        self.extra = ("--processes", str(processes), "--protocol", "gateway", "--loop", "uvloop")
        self.env = {**os.environ}
        if source is not None:
            self.env["PYTHONPATH"] = str(source.resolve())


class PolicyRelay(BareRelay):
    """System p: the bare relay running the gateway's policy stage (config as c-sqlite's)."""

    name = "p"

    def __init__(self, processes: int, source: Path | None = None) -> None:
        self.processes = processes
        self.env = {**os.environ}
        if source is not None:
            self.env["PYTHONPATH"] = str(source.resolve())

    def start(self, sink: Sink, workdir: Path) -> None:
        config = workdir / "gateway.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///{workdir / "directory.db"}"\n'
            f'state_dir = "{workdir}"\n[server]\nhostname = "bench-gateway.localhost"\n'
            f'[directory]\ndemo = false\n[notify]\ndigest_at = ""\n[policy]\npack = "{PACK}"\n'
        )
        import_directory(config, workdir, self.env)
        self.extra = (
            *("--policy", str(config), "--processes", str(self.processes)),
            *("--protocol", "gateway", "--loop", "uvloop"),
        )
        super().start(sink, workdir)

    def stop(self) -> None:
        super().stop()
        self.log.close()


def _default_main_cf() -> None:
    """Postfix runs `-c DIR` only for a DIR listed in the default main.cf."""
    etc = str(POSTFIX_DIR / "etc")
    main_cf = Path("/etc/postfix/main.cf")
    if not main_cf.exists():
        # A "No configuration" install: a default config that can never listen on port 25.
        main_cf.write_text(f"alternate_config_directories = {etc}\nmaster_service_disable = inet\n")
        return
    current = subprocess.run(
        ["postconf", "-h", "alternate_config_directories"], capture_output=True, text=True
    ).stdout
    if etc not in current.replace(",", " ").split():
        value = f"{current.strip()} {etc}".strip()
        subprocess.run(["postconf", "-e", f"alternate_config_directories = {value}"], check=True)


class PostfixRelay(Relay):
    name = "b"

    def start(self, sink: Sink, workdir: Path) -> None:
        self.port = free_port()
        etc, spool, data = POSTFIX_DIR / "etc", POSTFIX_DIR / "spool", POSTFIX_DIR / "lib"
        if POSTFIX_DIR.exists():
            shutil.rmtree(POSTFIX_DIR)
        for d in (etc, spool, data):
            d.mkdir(parents=True)
        for d in (WORK, POSTFIX_DIR):
            d.chmod(0o755)  # every parent must be traversable by user postfix
        shutil.chown(data, "postfix")
        for name in ("master.cf", "dynamicmaps.cf", "postfix-files", "postfix-script"):
            shutil.copy(Path("/etc/postfix") / name, etc / name)
        for name in ("dynamicmaps.cf.d", "postfix-files.d"):
            if (Path("/etc/postfix") / name).is_dir():
                shutil.copytree(Path("/etc/postfix") / name, etc / name)
        (etc / "main.cf").write_text(
            "\n".join(
                [
                    "compatibility_level = 3.6",
                    f"queue_directory = {spool}",
                    f"data_directory = {data}",
                    f"meta_directory = {etc}",
                    "myhostname = bench-postfix.localhost",
                    "mydestination =",
                    "inet_interfaces = 127.0.0.1",
                    "inet_protocols = ipv4",
                    "mynetworks = 127.0.0.0/8",
                    f"relayhost = [127.0.0.1]:{sink.port}",
                    "smtpd_relay_restrictions = permit_mynetworks, reject",
                    "smtpd_recipient_restrictions = permit_mynetworks, reject",
                    "alias_maps =",
                    "alias_database =",
                    "local_recipient_maps =",
                    f"maillog_file = {workdir / 'postfix.log'}",
                    "biff = no",
                    "",
                ]
            )
        )
        _default_main_cf()
        subprocess.run(["postconf", "-c", str(etc), "-F", "*/*/chroot = n"], check=True)
        subprocess.run(
            [
                "postconf",
                "-c",
                str(etc),
                "-M",
                f"smtp/inet=127.0.0.1:{self.port} inet n - n - - smtpd",
            ],
            check=True,
        )
        self.out = open(workdir / "postfix.out", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["postfix", "-c", str(etc), "start-fg"], stdout=self.out, stderr=subprocess.STDOUT
        )
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        subprocess.run(
            ["postfix", "-c", str(POSTFIX_DIR / "etc"), "stop"], capture_output=True, check=False
        )
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            super().stop()
        self.out.close()


class GatewayRelay(Relay):
    def __init__(
        self,
        backend: str,
        processes: int,
        log_level: str,
        source: Path | None = None,
        workers: int | None = None,
    ) -> None:
        self.name = f"c-{backend}"
        self.env = {**os.environ}
        if source is not None:
            self.env["PYTHONPATH"] = str(source.resolve())
        self.backend = backend
        self.processes = processes
        self.workers = workers
        self.log_level = log_level
        self.pg_name = ""

    def _database(self, workdir: Path) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{workdir / 'archive.db'}"
        import psycopg

        self.pg_name = f"bench_tp_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.pg_name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.pg_name}"

    def start(self, sink: Sink, workdir: Path) -> None:
        self.port = free_port()
        config = workdir / "gateway.toml"
        server = [
            f'listen = "127.0.0.1:{self.port}"',
            'hostname = "bench-gateway.localhost"',
        ]
        if self.processes > 1:
            server.append(f"processes = {self.processes}")
        config.write_text(
            "\n".join(
                [
                    "[server]",
                    *server,
                    "[upstream]",
                    f'url = "smtp://127.0.0.1:{sink.port}"',
                    *(["[delivery]", f"workers = {self.workers}"] if self.workers else []),
                    "[database]",
                    f'url = "{self._database(workdir)}"',
                    f'state_dir = "{workdir}"',
                    "[directory]",
                    "demo = false",
                    "[notify]",
                    'digest_at = ""',
                    "[web]",  # the console (no load here) stays off, as in earlier runs
                    'listen = ""',
                    "[policy]",
                    f'pack = "{PACK}"',
                    "",
                ]
            )
        )
        import_directory(config, workdir, self.env)
        self.log = open(workdir / "gateway.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gateway",
                "--config",
                str(config),
                "serve",
                "--log-level",
                self.log_level,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=self.env,
        )
        wait_port(self.port, self.proc)

    @staticmethod
    def cpu_parts(workdir: Path) -> tuple[dict[str, float], float]:
        """CPU seconds per message of each part (`policy`, `archive_writer`), and the archive
        writer's records per transaction, as the relay processes counted them and published
        at their stop (`[server] processes` > 1)."""
        from gateway.metrics import (
            ARCHIVE_RECORDS,
            ARCHIVE_TRANSACTIONS,
            CPU_SECONDS,
            SharedCounters,
            metrics_folder,
        )

        seconds: dict[str, float] = {}
        messages = records = transactions = 0.0
        # Every process's file: this script's pid is none of theirs.
        for snapshot in SharedCounters(metrics_folder(workdir)).others():
            for labels, value in snapshot.get(CPU_SECONDS, {}).items():
                part = dict(labels).get("part", "")
                seconds[part] = seconds.get(part, 0.0) + value
            messages += sum(snapshot.get("safeguard_smtp_transactions_total", {}).values())
            records += sum(snapshot.get(ARCHIVE_RECORDS, {}).values())
            transactions += snapshot.get(ARCHIVE_TRANSACTIONS, {}).get((("held", "records"),), 0)
        batch = records / transactions if transactions else 0.0
        if not messages:
            return {}, batch
        return {part: total / messages for part, total in seconds.items()}, batch

    def stop(self) -> None:
        super().stop()
        self.log.close()
        if self.pg_name:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            self.pg_name = ""


# --- one run ---------------------------------------------------------------------------------
def database_cpu() -> float:
    """CPU seconds so far of every PostgreSQL server process (backends, WAL writer,
    checkpointer), from /proc: the database's own share of the machine's time, which the
    relay's CPU does not include."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        if stat[stat.index(b"(") + 1 : stat.rindex(b")")] != b"postgres":
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@dataclass
class Run:
    e2e: float  # msg/s, until the sink counted every message
    intake: float  # msg/s, until smtp-source had every 250
    probe: list[float]  # seconds after the final dot, relay
    direct: list[float]  # the same, straight to smtp-sink
    cores: float  # the relay's CPU seconds per second of the load phase
    machine: MachineTimes  # the whole machine's CPU time over the load phase
    messages: int
    pss_kb: int  # peak summed PSS of the relay's process tree
    rss_kb: int  # the same for RSS (counts shared pages once per process)
    database: float = 0.0  # c-postgres: the PostgreSQL server's CPU seconds over the load
    # c: CPU seconds per message of the gateway's parts, from its own counters
    # (`safeguard_cpu_seconds_total`) over the whole run: the load and the probe.
    parts: dict[str, float] = field(default_factory=dict)
    batch: float = 0.0  # c: records per archive transaction (group commit), over the run

    @property
    def database_per_message(self) -> float:
        return self.database / self.messages

    @property
    def cpu_per_message(self) -> float:
        """The relay's CPU seconds per message (a database server's own CPU not included)."""
        return self.cores / self.e2e

    @property
    def machine_per_message(self) -> float:
        """CPU seconds per message of the whole machine: relay, client, sink, database server
        and the kernel's network and disk work for them."""
        return (self.machine.busy - self.machine.own) / self.messages

    @property
    def idle_share(self) -> float:
        m = self.machine
        return m.idle / (m.busy + m.idle + m.steal)


@dataclass
class Result:
    system: str
    runs: list[Run] = field(default_factory=list)

    def median(self, get: Callable[[Run], float]) -> float:
        return statistics.median(get(r) for r in self.runs)

    @property
    def e2e(self) -> float:
        return self.median(lambda r: r.e2e)

    @property
    def intake(self) -> float:
        return self.median(lambda r: r.intake)

    def added(self, p: float) -> float:
        return self.median(lambda r: pct(r.probe, p) - pct(r.direct, p))

    def latency(self, p: float) -> float:
        return self.median(lambda r: pct(r.probe, p))

    @property
    def memory_mb(self) -> float:
        return self.median(lambda r: r.pss_kb) / 1024


def make_relay(system: str, args: argparse.Namespace) -> Relay:
    if system == "a":
        return BareRelay()
    if system == "u":
        return UvloopRelay()
    if system == "a2":
        return BareRelays(args.processes)
    if system == "s":
        return GatewayProtocolRelays(args.processes, args.gateway_src)
    if system == "p":
        return PolicyRelay(args.processes, args.gateway_src)
    if system == "b":
        return PostfixRelay()
    return GatewayRelay(
        system.removeprefix("c-"), args.processes, args.log_level, args.gateway_src, args.workers
    )


@contextlib.contextmanager
def profiling(pid: int, target: Path | None, name: str) -> Iterator[None]:
    if target is None:
        yield
        return
    target.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--threads",
            "--rate",
            "200",
            "--gil",  # only the thread holding the GIL: where the CPU time of Python goes
            "--format",
            "speedscope",
            "-o",
            str(target / f"{name}.speedscope.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def one_run(system: str, n: int, args: argparse.Namespace, files: dict[str, Path]) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix=f"{system}-{n}-", dir=WORK))
    workdir.chmod(0o755)
    sink = Sink(workdir)
    relay = make_relay(system, args)
    try:
        relay.start(sink, workdir)
        with (
            MemorySampler(relay.proc.pid) as memory,
            profiling(relay.proc.pid, args.profile, f"{system}-{n}"),
        ):
            memory.mark()
            machine = MachineTimes.now()
            database = database_cpu() if system == "c-postgres" else 0.0
            start = time.monotonic()
            intake = run_load(relay.port, files, args.messages, args.sessions)
            done = sink.wait_for(args.messages, timeout=120 + args.messages / 20)
            e2e = args.messages / (done - start)
            machine = MachineTimes.now() - machine
            if system == "c-postgres":
                database = database_cpu() - database
            memory._sample()
            cpu = memory.cpu_seconds / (done - start)
            before = sink.count()
            probed = probe(relay.port, args.probe_messages, args.probe_rate, args.size)
            sink.wait_for(before + args.probe_messages, timeout=60)
        direct = probe(sink.port, args.probe_messages, args.probe_rate, args.size)
        run = Run(
            e2e=e2e,
            intake=args.messages / intake,
            probe=probed,
            direct=direct,
            pss_kb=memory.peak_kb,
            cores=cpu,
            rss_kb=memory.peak_rss_kb,
            machine=machine,
            messages=args.messages,
            database=database,
        )
        relay.stop()  # the gateway publishes its counters as it stops
        if isinstance(relay, GatewayRelay):
            run.parts, run.batch = relay.cpu_parts(workdir)
        return run
    finally:
        relay.stop()
        sink.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


# --- report ----------------------------------------------------------------------------------
LABELS = {
    "a": "a: bare aiosmtpd relay",
    "u": "u: a on uvloop (c's event loop)",
    "a2": "a2: a in as many processes as c",
    "s": "s: a2 on the gateway's SMTP protocol class and loop",
    "p": "p: s + the gateway's policy stage, nothing stored",
    "b": "b: Postfix (durable)",
    "c-sqlite": "c: gateway, SQLite",
    "c-postgres": "c: gateway, PostgreSQL",
}


def table(results: dict[str, Result]) -> str:
    head = (
        "| system | msg/s e2e | msg/s intake | added p50 | added p99 | peak memory (PSS) "
        "| ÷ a | ÷ b |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for system, res in results.items():
        ratios = ["", ""]
        if system.startswith("c-") or system in ("p", "u", "a2", "s"):
            for i, base in enumerate(("a", "b")):
                if base in results:
                    ratios[i] = f"{statistics.median(round_ratios(res, results[base])):.2f}"
        rows.append(
            f"| {LABELS.get(system, system)} | {res.e2e:.0f} | {res.intake:.0f} "
            f"| {res.added(50) * 1000:.1f} ms | {res.added(99) * 1000:.1f} ms "
            f"| {res.memory_mb:.0f} MB | {ratios[0]} | {ratios[1]} |"
        )
    return head + "\n".join(rows) + "\n"


def round_ratios(res: Result, base: Result) -> list[float]:
    """e2e of each round over the base's in the same round: the systems of a round run back to
    back, so a drift in the VM's speed over the session cancels out of each ratio."""
    return [r.e2e / b.e2e for r, b in zip(res.runs, base.runs, strict=False)]


def ratio_lines(results: dict[str, Result]) -> str:
    lines = []
    for system, res in results.items():
        if not system.startswith("c-") and system not in ("p", "u", "a2", "s"):
            continue
        bases = (
            ("a", "u", "a2", "s", "p", "b")
            if system.startswith("c-")
            else ("a", "u", "a2", "s", "b")
        )
        for base in bases:
            if base == system:
                continue
            if base not in results:
                continue
            rounds = round_ratios(res, results[base])
            cpu = [
                r.cpu_per_message / b.cpu_per_message
                for r, b in zip(res.runs, results[base].runs, strict=False)
            ]
            lines.append(
                f"- {system}/{base}: per round "
                + ", ".join(f"{x:.2f}" for x in rounds)
                + f" (median {statistics.median(rounds):.2f}; ratio of the medians "
                f"{res.e2e / results[base].e2e:.2f}); CPU per message "
                + ", ".join(f"{x:.1f}x" for x in cpu)
            )
    return "\n".join(lines) + "\n" if lines else ""


# --- what bounds c --------------------------------------------------------------------------
STAGE_BATCH = 16  # records per commit in the floor: ~7x what the relay's writer gets under load


@dataclass
class Stages:
    """CPU seconds per message of the gateway's own stages in one thread, nothing else running
    (bench/stage_cost.py): parse + rules + plan, and the archive and queue rows committed."""

    prepare: float
    commit: float
    index: float  # SQLite's full-text index, filled after the commit (0 on PostgreSQL)


def stage_costs(args: argparse.Namespace) -> Stages:
    env = {**os.environ}
    if args.gateway_src is not None:
        env["PYTHONPATH"] = str(args.gateway_src.resolve())
    out = subprocess.run(
        [
            PYTHON,
            str(ROOT / "bench" / "stage_cost.py"),
            "--messages",
            str(args.messages),
            "--rounds",
            "1",
            "--batch",
            str(STAGE_BATCH),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    return Stages(prepare=found["prepare"][0], commit=found["commit"][0], index=found["index"][0])


def bound_lines(results: dict[str, Result], stages: list[Stages]) -> str:
    """Per round: the least machine CPU a message of c can cost, and the rate it allows.

    floor = s's machine CPU per message (the client, the sink, the kernel's network work and
    SMTP in and out on the gateway's own protocol class) + prepare + commit + SQLite's
    full-text indexing as measured alone.
    Every part is less than c pays for it under load: c also marks each delivery, logs, counts,
    and commits ~2 records per transaction, not 16; and alone the stages run with warm caches.
    If every core did nothing but this work, c could not pass cores / floor messages a second.
    """
    if not stages or not {"s", "b"} <= results.keys():
        return ""
    cores = os.cpu_count() or 1
    rows = []
    for n, stage in enumerate(stages):
        runs = {k: r.runs[n] for k, r in results.items() if n < len(r.runs)}
        if "s" not in runs or "b" not in runs:
            continue
        smtp = runs["s"].machine_per_message
        floor = smtp + stage.prepare + stage.commit + stage.index
        ceiling = cores / floor
        row = {
            "smtp": smtp,
            "prepare": stage.prepare,
            "commit": stage.commit,
            "index": stage.index,
            "floor": floor,
            "ceiling": ceiling,
            "b": ceiling / runs["b"].e2e,
        }
        if "a" in runs:
            row["a"] = ceiling / runs["a"].e2e
        rows.append(row)
    if not rows:
        return ""

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows if key in r)

    def each(key: str, fmt: str = "{:.2f}") -> str:
        return ", ".join(fmt.format(r[key]) for r in rows if key in r)

    lines = [
        f"- s (SMTP in and out, client, sink, kernel): {med('smtp') * 1000:.2f} ms of machine "
        f"CPU per message (per round {each('smtp', '{:.4f}')} s)",
        f"- prepare alone: {med('prepare') * 1000:.2f} ms; commit alone, {STAGE_BATCH} records "
        f"per transaction: {med('commit') * 1000:.2f} ms; the full-text index after it, 500 "
        f"records per transaction: {med('index') * 1000:.2f} ms",
        f"- floor: {med('floor') * 1000:.2f} ms per message; on {cores} cores at most "
        f"{med('ceiling'):.0f} msg/s (per round {each('ceiling', '{:.0f}')})",
        f"- so c/b can be at most {med('b'):.2f} (per round {each('b')}; target 1.2)",
    ]
    if any("a" in r for r in rows):
        lines.append(f"- and c/a at most {med('a'):.2f} (per round {each('a')}; target 0.6)")
    if {"c-sqlite", "c-postgres"} <= results.keys():
        lite, pg = results["c-sqlite"], results["c-postgres"]
        server = pg.median(lambda r: r.database_per_message) * 1000
        share = pg.median(lambda r: r.database_per_message / r.machine_per_message)
        lines.append(
            f"- PostgreSQL: per message the relay used {pg.median(_cpu) * 1000:.2f} ms of CPU "
            f"(on SQLite {lite.median(_cpu) * 1000:.2f} ms, the commit's work included) and "
            f"the database server {server:.2f} ms more ({share:.0%} of the machine's CPU per "
            f"message), on the same cores; the machine was "
            f"{pg.median(lambda r: r.idle_share):.0%} idle (on SQLite "
            f"{lite.median(lambda r: r.idle_share):.0%})"
        )
        # The server's CPU, taken away: each round's rate scaled by the machine CPU per message
        # with and without it. What the relay alone allows, if CPU is what bounds c-postgres.
        freed = [
            r.e2e * r.machine_per_message / (r.machine_per_message - r.database_per_message)
            for r in pg.runs
        ]
        line = (
            "- had the server used no CPU and all else cost what it did, c-postgres would "
            f"have run at {_per_round(freed, '{:.0f}', ' msg/s')}"
        )
        if "a" in results:
            vs_a = [f / a.e2e for f, a in zip(freed, results["a"].runs, strict=False)]
            line += f", c/a {_per_round(vs_a)}"
        lines.append(line)
    for system in ("c-sqlite", "c-postgres"):
        res = results.get(system)
        if res is None or not all(r.parts for r in res.runs):
            continue
        policy = [r.parts.get("policy", 0.0) * 1000 for r in res.runs]
        writer = [r.parts.get("archive_writer", 0.0) * 1000 for r in res.runs]
        relay = [r.cpu_per_message * 1000 for r in res.runs]
        batch = [r.batch for r in res.runs]
        lines.append(
            f"- inside {system}, by its own counters over the load and the probe: the policy "
            f"stage {_per_round(policy, unit=' ms')}, the archive writer's thread "
            f"{_per_round(writer, unit=' ms')} of CPU per message, of the relay's "
            f"{_per_round(relay, unit=' ms')} over the load; "
            f"{_per_round(batch, '{:.1f}')} records per archive transaction"
        )
    if {"p", "b"} <= results.keys():
        # Measured, not derived: c runs p's SMTP, loop and policy stage, and stores besides.
        bound = round_ratios(results["p"], results["b"])
        lines.append(
            "- measured: p (s + the policy stage, nothing stored) ran at "
            f"{_per_round(bound, unit=' of b')}; c does all p does and stores besides, so c/b "
            "is below that"
        )
    return "\n".join(lines) + "\n"


def _per_round(values: list[float], fmt: str = "{:.2f}", unit: str = "") -> str:
    """'<median><unit> (per round x, y, z)'."""
    each = ", ".join(fmt.format(v) for v in values)
    return f"{fmt.format(statistics.median(values))}{unit} (per round {each})"


def _cpu(run: Run) -> float:
    return run.cpu_per_message


def machine_lines(results: dict[str, Result]) -> str:
    lines = []
    for system, res in results.items():
        per = res.median(lambda r: r.machine_per_message) * 1000
        idle = res.median(lambda r: r.idle_share) * 100
        lines.append(
            f"- {system}: {per:.2f} ms of machine CPU per message, {idle:.0f} % idle "
            f"during the load"
        )
    return "\n".join(lines) + "\n"


def raw_runs(results: dict[str, Result]) -> str:
    lines = []
    for system, res in results.items():
        for i, r in enumerate(res.runs, 1):
            lines.append(
                f"- {system} run {i}: e2e {r.e2e:.0f} msg/s, intake {r.intake:.0f} msg/s, reply "
                f"p50/p99 {pct(r.probe, 50) * 1000:.1f}/{pct(r.probe, 99) * 1000:.1f} ms "
                f"(smtp-sink direct {pct(r.direct, 50) * 1000:.2f}/"
                f"{pct(r.direct, 99) * 1000:.2f} ms), peak PSS {r.pss_kb / 1024:.0f} MB "
                f"(RSS {r.rss_kb / 1024:.0f} MB), relay CPU {r.cores:.2f} cores"
                f" = {r.cpu_per_message * 1000:.2f} ms per message, machine "
                f"{r.machine_per_message * 1000:.2f} ms per message ({r.idle_share:.0%} idle)"
                + _database_note(r)
            )
    return "\n".join(lines) + "\n"


def _database_note(run: Run) -> str:
    note = ""
    if run.database:
        note = f", PostgreSQL server {run.database_per_message * 1000:.2f} ms per message"
    if run.parts:
        note += (
            f"; its own counters, load and probe: policy {run.parts.get('policy', 0) * 1000:.2f}"
            f" ms, archive writer {run.parts.get('archive_writer', 0) * 1000:.2f} ms per message"
            f", {run.batch:.1f} records per archive transaction"
        )
    return note


def environment() -> str:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    postfix = subprocess.run(
        ["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True
    ).stdout.strip()
    import aiosmtpd
    import uvloop

    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, aiosmtpd {aiosmtpd.__version__}, "
        f"uvloop {uvloop.__version__}, Postfix {postfix}"
    )


def report(results: dict[str, Result], args: argparse.Namespace, stages: list[Stages]) -> str:
    return f"""# Relay throughput

Generated by `bench/throughput.py` on {time.strftime("%Y-%m-%d %H:%M %Z")}: {environment()}.

{args.messages} messages of ~{args.size // 1000} kB over {args.sessions} parallel sessions (one
message per connection), `smtp-source` → relay → `smtp-sink`, all on loopback; medians of
{args.runs} runs, a fresh relay, sink and database per run. Gateway: pack `{PACK}`, 5,000
contacts, {args.processes} process(es), log level `{args.log_level}`.

{table(results)}
- **msg/s e2e**: messages / (first connection .. the sink has counted the last one).
  **intake**: messages / time until every `250`.
- **÷ a, ÷ b** (c/a, c/b for the gateway): the median over rounds of the system's e2e over a's
  (b's) in the same round. p is s with the gateway's policy stage and nothing stored, so p/s
  is the policy work's share and c/p the archive's, queue's and delivery worker's; c does all
  that p does and more, so p/b bounds c/b from above. Each round
  runs the systems back to back with fresh processes; this VM's speed drifts by a third and more
  within an hour, and a ratio taken within a round cancels that drift where a ratio of
  medians taken across rounds does not. Both, and the CPU per message relative to a (b), are
  listed below the table.
- **added p50/p99**: the relay's reply time after the final `.`, minus smtp-sink's own, for
  {args.probe_messages} messages sent one per connection at {args.probe_rate:.0f}/s after the
  load has drained.
- **peak memory**: the largest sum of PSS over the relay's process tree (sampled every
  100 ms); PSS, not RSS, so that Postfix's many processes do not each count the libraries
  they share (the RSS sums are in the runs below).
- Durability: a: none (answers only after upstream's 250); b: Postfix defaults (queue file
  fsynced before 250); c: archive + queue committed before 250 (SQLite WAL
  `synchronous=FULL`; PostgreSQL `synchronous_commit=on`, `fsync=on`).
- Mix: 60 % to adult volunteers in the directory (a different one per message), 30 % to a
  14-year-old with their parent (flagged: no second member of staff), 10 % to a
  14-year-old without their parent (refused; a bounce goes to the sender instead). Each
  submission yields exactly one message at the sink, and every run checks that it did.

Ratios by round:

{ratio_lines(results)}
Machine CPU per message: the whole machine's busy time (every process, the kernel's network
and disk work; not this script's own sampling) over the load phase, divided by the messages:

{machine_lines(results)}
## What bounds c

The least machine CPU a message of c can cost, from parts measured in the same rounds: s (SMTP
in and out exactly as c does them, with the client, the sink and the kernel's work) plus the
gateway's own stages measured alone (`bench/stage_cost.py`, one thread, {STAGE_BATCH} records
per commit). c pays more for each part under load (it also marks deliveries, logs and counts,
and its writer gets ~2 records per transaction), so this floor is low, and the rate it allows
(every core busy with nothing else) is high:

{bound_lines(results, stages) or "- (needs s and b in the run)"}
Runs:

{raw_runs(results)}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=5000, help="body bytes (default 5000)")
    parser.add_argument("--only", default=",".join(SYSTEMS), help="e.g. a,b,c-sqlite")
    parser.add_argument(
        "--processes", type=int, default=2, help="gateway [server] processes (default 2)"
    )
    parser.add_argument("--log-level", default="info", help="gateway log level (default info)")
    parser.add_argument("--workers", type=int, help="gateway [delivery] workers (default: its own)")
    parser.add_argument("--probe-messages", type=int, default=200)
    parser.add_argument("--probe-rate", type=float, default=40.0)
    parser.add_argument("--profile", type=Path, help="py-spy speedscope profiles of c here")
    parser.add_argument(
        "--gateway-src", type=Path, help="run the gateway from this source tree (PYTHONPATH)"
    )
    parser.add_argument("--keep", action="store_true", help="keep work directories and logs")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "throughput.md")
    args = parser.parse_args()
    systems = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown system(s) {', '.join(sorted(unknown))}; known: {SYSTEMS}")
    if os.geteuid() != 0 and "b" in systems:
        parser.error("Postfix (b) needs root")
    ensure_postfix()
    WORK.mkdir(parents=True, exist_ok=True)
    WORK.chmod(0o755)
    files = {}
    for group in GROUPS:
        files[group.name] = WORK / f"message-{group.name}.txt"
        files[group.name].write_text(group.message(f"Programme update ({group.name})", args.size))

    results = {s: Result(s) for s in systems}
    stages: list[Stages] = []
    for n in range(1, args.runs + 1):
        if "s" in systems:
            stages.append(stage_costs(args))
            print(
                f"stages run {n}: prepare {stages[-1].prepare * 1000:.3f} ms, "
                f"commit {stages[-1].commit * 1000:.3f} ms, "
                f"index {stages[-1].index * 1000:.3f} ms CPU/msg",
                flush=True,
            )
        for system in systems:  # interleaved, so drift in the machine hits every system alike
            run = one_run(system, n, args, files)
            results[system].runs.append(run)
            print(
                f"{system} run {n}: e2e {run.e2e:.0f} msg/s, intake {run.intake:.0f} msg/s, "
                f"reply p50 {pct(run.probe, 50) * 1000:.1f} ms p99 {pct(run.probe, 99) * 1000:.1f}"
                f" ms, PSS {run.pss_kb / 1024:.0f} MB, {run.cores:.2f} cores"
                f" ({run.cpu_per_message * 1000:.2f} ms CPU/msg; machine "
                f"{run.machine_per_message * 1000:.2f} ms/msg, {run.idle_share:.0%} idle)"
                + _database_note(run),
                flush=True,
            )
    print()
    print(table(results))
    print(bound_lines(results, stages))
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report(results, args, stages))
        # --output may lie outside the checkout (a scratch copy to compare before replacing).
        print(f"written: {args.output.resolve()}")


if __name__ == "__main__":
    main()
