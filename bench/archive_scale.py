"""Archive at scale (issue 5): ingest, search and per-child export over a million messages.

Fills a fresh archive, on SQLite and/or PostgreSQL, with generated but realistic mail, through
the product's own code: the schema comes from the Alembic migrations (`open_engine`), records
are written by `Archive.store_many` (the group-commit path: archive row, hash chain,
archive_addresses, archive_findings and the full-text index) in batches of 1,000, searches run
through `ArchiveSearch.search` (what `safeguard search` runs: parse, query, count, audit) and
exports through `matching_ids` + `export` with the cover page (what
`safeguard export --contact` runs).

The corpus (deterministic for a given --seed, --messages and --end):
- 300 staff at teensinai.example send everything (the relay only carries staff mail), a few
  of them far more than others;
- ~5,000 outside addresses: 3,000 young people aged 12-19 (each with one or two guardians
  and a school), ~1,700 guardians, ~280 school addresses at 120 schools, 80 partners/venues;
- kinds of mail: to a young person copying a guardian (and usually a colleague), replies
  quoting a young person's question, to guardians, to schools, internal, to partners, and
  newsletters (Bcc, or visible recipients, which the pack rewrites);
- RFC 5322 bytes of 2-6 KB: text/plain, some multipart/alternative with HTML, some
  multipart/mixed with a base64 attachment (consent form, timetable, photo, ...);
- subjects and bodies from per-kind templates over a vocabulary with a long Zipf tail
  (topics, events, places, project names, names, reference numbers), so the full-text index
  sees a realistic spread of common, middling and rare terms;
- verdicts and findings as the teens-in-ai pack would give them (~85 % deliver, ~11 % flag,
  ~3 % reject, ~1 % rewrite), with the text that triggers them (missing copies, kisses and
  emoji, personal phone numbers, risk language);
- received times over ~3 years ending --end: weekdays and office hours mostly, fewer in the
  holidays, evenings sometimes; ids grow with time as in a real archive;
- one young person (the "child") is on exactly 2,000 messages (To, Cc or Bcc), so the export
  target is measured on a 2,000-message history (fewer on a small --messages run).

A sample of the generated messages (one in 500) is parsed with the product's parser to check
that the record fields (addresses by role, subject, new text) are what the pipeline would store.

Rerun:

    .venv/bin/python bench/archive_scale.py                       # both databases, 1M messages
    .venv/bin/python bench/archive_scale.py --db sqlite --messages 20000 --out /tmp/smoke.md
    .venv/bin/python bench/archive_scale.py --db postgres --keep   # leave bench_archive behind
    .venv/bin/python bench/archive_scale.py --reuse --keep --sqlite-path /var/tmp/a.db
                                                # search + export again on a kept archive

PostgreSQL: 127.0.0.1:5432, user postgres, trust authentication; the run creates the database
`bench_archive` (--pg-database) and drops it afterwards unless --keep. SQLite: a file in a
temporary directory unless --sqlite-path. After loading, PostgreSQL gets one `VACUUM ANALYZE`
(what autovacuum does on its own soon after a bulk load); SQLite is searched as the product
leaves it. Writes bench/results/archive_scale.md (--out). A full run (both databases, 1M
messages) takes about an hour on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import collections
import contextlib
import hashlib
import html
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.config import Settings, settings_from_dict  # noqa: E402
from gateway.export import cover_page, export, matching_ids  # noqa: E402
from gateway.message.parse import parse_message  # noqa: E402
from gateway.notify.render import environment_for  # noqa: E402
from gateway.search import parse  # noqa: E402
from gateway.service import open_engine  # noqa: E402
from gateway.store.archive import Archive  # noqa: E402
from gateway.store.records import ArchiveRecord  # noqa: E402
from gateway.store.search import COUNT_LIMIT, ArchiveSearch  # noqa: E402

DOMAIN = "teensinai.example"
PACK = "teens-in-ai"
ZONE = ZoneInfo("Europe/London")
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 1000
CHILD_MESSAGES = 2000
DAYS = 3 * 365 + 1
SEARCH_WARMUP = 2
SEARCH_REPEATS = 20
EXPORT_REPEATS = 3
SEARCH_TARGET_MS = 150.0
EXPORT_TARGET_S = 2.0
VALIDATE_EVERY = 500  # parse one generated message in this many with the product's parser
META_KEY = "bench.archive_scale"
DEFAULT_OUT = ROOT / "bench" / "results" / "archive_scale.md"

# ------------------------------------------------------------------------------ vocabulary


def _split(words: str, sep: str | None = None) -> list[str]:
    return words.split(sep)


FIRST_NAMES = _split(
    "Aaliyah Aaron Abdul Abigail Adam Adebayo Aditi Aisha Alex Alfie Alice Amara Amelia Amir "
    "Amy Ananya Archie Arjun Ava Ayesha Bella Ben Bethan Bilal Caleb Callum Carys Charlie "
    "Chloe Chloé Connor Daisy Daniel Darius Dylan Eden Eleanor Eliza Ella Ellie Emily Emma "
    "Ethan Eva Evie Faith Farah Finley Freya Gabriel Grace Hana Hannah Harper Harry Harvey "
    "Hassan Holly Ibrahim Imogen Isaac Isla Ivy Jack Jacob Jake Jamal Jasmine Jayden Jessica "
    "Joel Joseph Joshua Kai Kayla Keira Kian Laila Layla Leo Lewis Liam Lily Logan Lola Louie "
    "Lucas Lucy Luke Maisie Maryam Mason Matilda Maya Megan Mia Mohammed Molly Muhammad Nathan "
    "Niamh Noah Noor Oliver Olivia Omar Oscar Owen Phoebe Poppy Priya Rahul Reuben Riley Rosie "
    "Ruby Rhys Sam Samir Sana Sara Scarlett Sebastian Siân Sienna Sofia Sophie Theo Thomas "
    "Tobi Tom Tyler Violet William Yasmin Yusuf Zain Zara Zoe Zoë"
)
SURNAMES = _split(
    "Adams Ahmed Akhtar Ali Allen Anderson Armstrong Atkinson Bailey Baker Banerjee Barker "
    "Begum Bell Bennett Bibi Bond Brown Butler Campbell Carter Chambers Chapman Chen Clarke "
    "Cole Collins Cook Cooper Cox Davies Davis Dawson Dixon Edwards Ellis Evans Fletcher "
    "Foster Fox Francis Gill Gordon Graham Grant Gray Green Griffiths Hall Harris Harrison "
    "Hart Hill Holmes Hughes Hunt Hussain Islam Jackson James Jenkins Johnson Jones Kaur "
    "Kelly Khan King Knight Lee Lewis Lloyd Marshall Martin Mason Matthews Mensah Miah "
    "Mills Mitchell Moore Morgan Morris Murphy Murray Nguyen Okafor Owen Palmer Parker Patel "
    "Pearson Phillips Powell Price Rahman Reid Richards Roberts Robinson Rogers Rose Ross "
    "Russell Saunders Scott Shah Sharma Shaw Simpson Singh Smith Stevens Stewart Taylor "
    "Thomas Thompson Turner Walker Ward Watson Webb White Wilkinson Williams Wilson Wood "
    "Wright Yilmaz Young"
)
HOME_DOMAINS = (
    ("gmail.com", 30),
    ("outlook.com", 12),
    ("hotmail.co.uk", 12),
    ("icloud.com", 8),
    ("yahoo.co.uk", 7),
    ("btinternet.com", 6),
    ("live.co.uk", 4),
    ("sky.com", 4),
    ("hotmail.com", 4),
    ("aol.com", 2),
    ("virginmedia.com", 3),
    ("talktalk.net", 2),
    ("protonmail.com", 1),
)
SCHOOL_STEMS = _split(
    "St Mary's|Oakfield|Riverside|Kingsmead|Highgate|Beacon|Parkside|Hillcrest|Westfield|"
    "Brookside|Canal Side|Moorlands|Ashton|Greenwood|Harrow Way|Elmhurst|Fairfield|Northgate|"
    "Southbank|Thornhill|Bishop Challoner|Cardinal Newman|Saint Paul's|Queen Elizabeth's|"
    "King Edward VI|Stanley Park|Lime Tree|Meadowbank|Orchard|Redbridge|Silverdale|Tudor|"
    "Victoria Park|Willow Bank|Abbey|Chiltern|Pennine|Mersey Vale|Tyne View|Severn",
    "|",
)
SCHOOL_KINDS = ("Academy", "High School", "School", "College", "Community School", "Grammar")
SCHOOL_ROLES = ("office", "safeguarding", "careers", "admin", "headteacher", "computing")
STAFF_ROLES = (
    "Programme Manager",
    "Mentor Coordinator",
    "Youth Worker",
    "Education Officer",
    "Volunteer Coordinator",
    "Head of Programmes",
    "Community Lead",
    "Data Science Tutor",
    "Outreach Officer",
    "Events Coordinator",
    "Operations Assistant",
    "Partnerships Lead",
)
PARTNERS = (
    "bookings@sciencemuseum.example",
    "groups@nhm.example",
    "events@barbican.example",
    "hello@codebar.example",
    "education@bletchleypark.example",
    "schools@britishlibrary.example",
    "venues@thecommunityhub.example",
    "catering@greenleafcatering.example",
    "hire@coachhire.example",
    "info@makerspace.example",
)
TOPICS = _split(
    "machine learning|robotics|Python|data science|AI ethics|chatbots|computer vision|"
    "climate data|app design|web development|cyber security|neural networks|game design|"
    "3D printing|drones|sensors|Raspberry Pi|micro:bit|Scratch|JavaScript|spreadsheets|"
    "statistics|user research|prototyping|pitching|public speaking|entrepreneurship|"
    "responsible AI|image recognition|natural language processing|smart cities|healthcare AI|"
    "recycling technology|accessibility|sustainability|digital art|music technology|"
    "electronics|coding",
    "|",
)
EVENTS = _split(
    "hackathon|workshop|bootcamp|showcase|open day|summer school|careers fair|"
    "mentoring session|awards evening|residential|coding club|robotics club|induction|"
    "pitch day|demo day|family evening|taster session|masterclass|study visit|"
    "AI accelerator|innovation challenge|Saturday club",
    "|",
)
MUSEUMS = _split(
    "the Science Museum|the Natural History Museum|Bletchley Park|the British Library|"
    "the National Museum of Computing|the Barbican|the Design Museum|the Tate Modern|"
    "the Museum of Science and Industry|the Royal Institution|the Francis Crick Institute",
    "|",
)
PLACES = _split(
    "room 4|room 12|the main hall|the library|the Innovation Lab|Studio 2|the community centre "
    "on Mill Lane|the Kings Cross office|the Birmingham hub|the Manchester office|the IT suite|"
    "Zoom|Microsoft Teams|the sports hall|the canteen|reception|the Maker Space|the lecture "
    "theatre|the Leeds office|the Bristol hub",
    "|",
)
PROJECT_ADJ = _split(
    "Smart|Green|Safe|Happy|Clever|Quiet|Friendly|Open|Tiny|Bright|Rapid|Fair|Kind|Bold|Clear|"
    "Solar|Urban|Ocean|Digital|Healthy",
    "|",
)
PROJECT_NOUN = _split(
    "Recycler|Bee Counter|Bus Tracker|Plant Doctor|Study Buddy|Food Saver|Litter Picker|"
    "Sign Translator|Mood Journal|Energy Monitor|Flood Alert|Air Monitor|Bike Planner|"
    "Homework Helper|Step Counter|Water Meter|Wildlife Camera|Route Finder|Recipe Bot|"
    "Sleep Coach",
    "|",
)
THINGS = _split(
    "laptop|charger|lunch|water bottle|consent form|student ID|notebook|headphones|USB stick|"
    "Oyster card|packed lunch|medication|permission slip|poster|slides|prototype|"
    "presentation|certificate|timetable|risk assessment",
    "|",
)
TERMS = ("autumn term", "spring term", "summer term", "half term", "Easter holidays")
# A long tail: each word is drawn with weight 1/rank, so a few are everywhere and most rare.
TAIL = _split(
    "project team session week work time idea feedback question support progress group plan "
    "practice problem answer example design data model result test code screen slide video "
    "photo poster chart graph table list link file folder email message note form letter "
    "update change meeting call event trip visit lunch break train bus coach station ticket "
    "parent carer guardian teacher mentor volunteer student pupil learner speaker judge "
    "partner sponsor school college university office hall room lab studio kitchen garden "
    "park library museum gallery theatre cinema stadium hospital clinic council charity "
    "company startup business market customer user player game level score point prize "
    "award badge medal trophy certificate reference report review survey interview "
    "application deadline budget invoice receipt payment refund deposit discount voucher "
    "uniform badge lanyard wristband helmet goggles gloves apron battery cable screen mouse "
    "keyboard tablet phone camera tripod microphone speaker printer scanner sensor motor "
    "servo wheel gear chassis frame bracket circuit resistor LED breadboard soldering "
    "algorithm variable function loop array string integer boolean dictionary library "
    "framework notebook dataset spreadsheet dashboard database server cloud network "
    "password account login profile privacy consent policy guidance safeguarding wellbeing "
    "attendance punctuality behaviour confidence teamwork resilience creativity curiosity "
    "leadership communication empathy kindness patience honesty respect fairness inclusion "
    "diversity accessibility transport allergy dietary vegetarian vegan halal gluten "
    "wheelchair hearing visual dyslexia anxiety routine timetable calendar agenda minutes "
    "rota shift cover absence illness appointment dentist doctor exam revision coursework "
    "homework GCSE A-level BTEC apprenticeship internship placement volunteering "
    "fundraising raffle bake sale sponsorship newsletter bulletin blog podcast livestream "
    "recording transcript caption subtitle translation Urdu Polish Arabic Welsh Somali "
    "Bengali Portuguese Romanian weather rain snow heatwave umbrella sunscreen jacket hoodie "
    "trainers wellies picnic barbecue pizza sandwiches fruit biscuits juice tea coffee "
    "cake birthday anniversary celebration graduation ceremony assembly parade festival "
    "Diwali Eid Christmas Hanukkah Easter Ramadan Vaisakhi half-term bank-holiday "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday morning afternoon evening "
    "January February March April May June July August September October November "
    "December Birmingham Manchester Leeds Bristol Sheffield Liverpool Newcastle Nottingham "
    "Leicester Coventry Bradford Cardiff Glasgow Edinburgh Belfast Brighton Oxford "
    "Cambridge Reading Luton Slough Croydon Hackney Camden Lambeth Southwark Tower Hamlets "
    "Newham Brent Ealing Harrow Barnet Enfield Haringey Islington Lewisham Greenwich "
    "Woolwich Stratford Walthamstow Wembley Watford Stevenage Milton Keynes Northampton "
    "Peterborough Norwich Ipswich Colchester Chelmsford Southend Maidstone Canterbury Dover "
    "Hastings Eastbourne Worthing Portsmouth Southampton Bournemouth Exeter Plymouth Truro "
    "Gloucester Swindon Bath Hereford Worcester Shrewsbury Stoke Derby Lincoln Hull York "
    "Durham Sunderland Middlesbrough Carlisle Lancaster Preston Blackpool Bolton Wigan "
    "Salford Stockport Oldham Rochdale Huddersfield Wakefield Doncaster Rotherham Barnsley "
    "kestrel heron otter badger hedgehog squirrel fox owl robin sparrow magpie "
    "origami juggling chess karate netball cricket rugby hockey badminton swimming "
    "climbing kayaking archery fencing gymnastics skateboarding trampoline"
)
# Words that turn up once in a while (a message in a hundred has one of them): the archive's
# real long tail, where most of a full-text index's terms live.
RARE = _split(
    "aardvark abacus accordion acorn albatross alpaca anemone antler apricot armadillo "
    "asteroid avocado axolotl badminton bagpipes balaclava bamboo banjo barnacle barometer "
    "bassoon beetroot bellows bonsai boomerang bramble buttercup cactus calligraphy camellia "
    "canoe cardamom cartwheel cassowary catamaran cauldron cello chameleon chandelier "
    "chinchilla chrysalis cinnamon clarinet coracle cormorant crossbow crumpet cuttlefish "
    "daffodil dandelion didgeridoo dodo dormouse dragonfly dulcimer dumpling eiderdown "
    "emu escalator falafel ferret fjord flamingo flugelhorn gazebo gecko geyser glockenspiel "
    "gondola gooseberry gramophone grasshopper guacamole hammock harmonica harpsichord "
    "hedgerow hibiscus hovercraft hummingbird hyacinth iceberg igloo jackdaw jellyfish "
    "kaleidoscope kangaroo kazoo kingfisher kiwi koala kumquat labyrinth ladybird lantern "
    "lavender lemming liquorice llama lobster lychee macaw mandolin mango marimba marmalade "
    "marzipan meerkat metronome mongoose monsoon moorhen mosaic narwhal nectarine nightingale "
    "nutmeg oboe ocelot octopus okapi orangutan ostrich pagoda pangolin papaya parakeet "
    "parsnip pelican penguin periscope persimmon piccolo pistachio platypus plankton "
    "pomegranate porcupine puffin pumpernickel quokka quince raccoon rhubarb rickshaw "
    "saffron salamander sandcastle sarsaparilla saxophone scarecrow seahorse sextant "
    "snorkel sousaphone starfish stegosaurus sundial tambourine tapir telescope terrapin "
    "thistle toboggan toucan treacle trombone tuba tumbleweed turmeric ukulele umbrellabird "
    "unicycle vanilla velociraptor vole vulture wallaby walrus wasabi weasel wigwam "
    "wildebeest windmill wisteria wombat xylophone yak yodel zeppelin zither"
)
RARE_SENTENCES = (
    "P.S. Someone left a {rare} keyring in the room; ask at reception if it is yours.",
    "One team even built a model {rare} out of spare parts, which everyone loved.",
    "Fun fact from the quiz: the {rare} question caught almost everyone out.",
    "We will use the {rare} example again, since it made the idea easy to follow.",
)
TOWNS = TAIL[TAIL.index("Birmingham") : TAIL.index("Barnsley") + 1]
RISK_PHRASES = (
    "don't tell your parents",
    "keep this between us",
    "our little secret",
    "delete this message after you read it",
    "message me on Snapchat instead",
    "you seem really mature for your age",
    "we could meet up, just the two of us",
    "send me a photo of yourself",
)
INFORMAL = ("See you Thursday x", "Take care xx", "Lots of love", "Can't wait 😊", "Cheers! 😀")

# ---------------------------------------------------------------------------- the cast


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    first: str


@dataclass(frozen=True)
class Young(Person):
    born: date
    guardians: tuple[Person, ...]
    school: int  # index into Cast.schools


@dataclass
class Cast:
    staff: list[Person]
    staff_weights: list[float]  # cumulative
    roles: dict[str, str]
    young: list[Young]
    guardians: list[Person]
    schools: list[tuple[str, list[Person]]]  # (name, contacts)
    partners: list[Person]
    child: Young

    @property
    def outside(self) -> int:
        return (
            len(self.young)
            + len(self.guardians)
            + sum(len(c) for _, c in self.schools)
            + len(self.partners)
        )


def _slug(name: str) -> str:
    return "".join(
        ch
        for ch in name.lower()
        .replace("ë", "e")
        .replace("é", "e")
        .replace("â", "a")
        .replace("'", "")
        if ch.isalnum() or ch in ".-"
    )


def make_cast(seed: int, end: date) -> Cast:
    """The same people for the same seed: staff, young people, guardians, schools, partners."""
    rng = random.Random(f"cast:{seed}")
    used: set[str] = set()

    def unique(local: str, domain: str) -> str:
        n = 0
        while True:
            email = f"{local}{n or ''}@{domain}"
            if email not in used:
                used.add(email)
                return email
            n += rng.randint(1, 9)

    domains = [d for d, _ in HOME_DOMAINS]
    domain_weights = [w for _, w in HOME_DOMAINS]

    staff: list[Person] = []
    roles: dict[str, str] = {}
    for _ in range(300):
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        email = unique(_slug(f"{first}.{last}"), DOMAIN)
        staff.append(Person(email, f"{first} {last}", first))
        roles[email] = rng.choice(STAFF_ROLES)
    # A few staff write most of the mail (programme leads), most write a little.
    weights = [1.0 / (rank + 3) ** 0.9 for rank in range(len(staff))]
    cumulative = list(_accumulate(weights))

    schools: list[tuple[str, list[Person]]] = []
    for n in range(120):
        stem = SCHOOL_STEMS[n % len(SCHOOL_STEMS)]
        kind = SCHOOL_KINDS[(n // len(SCHOOL_STEMS) + n) % len(SCHOOL_KINDS)]
        name = f"{stem} {kind}"
        town = rng.choice(TOWNS).lower()
        domain = f"{_slug(stem.replace(' ', ''))}{_slug(kind.split()[0])[:4]}.{town}.sch.uk"
        contacts = []
        for role in rng.sample(SCHOOL_ROLES, rng.randint(2, 3)):
            contacts.append(Person(unique(role, domain), f"{name} ({role})", name))
        schools.append((name, contacts))

    guardians: list[Person] = []
    young: list[Young] = []
    while len(young) < 3000:
        last = rng.choice(SURNAMES)
        parents = []
        for _ in range(1 if rng.random() < 0.45 else 2):
            first = rng.choice(FIRST_NAMES)
            domain = rng.choices(domains, domain_weights)[0]
            local = _slug(rng.choice((f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}")))
            parents.append(Person(unique(local, domain), f"{first} {last}", first))
        guardians.extend(parents)
        school = rng.randrange(len(schools))
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):  # siblings share guardians
            first = rng.choice(FIRST_NAMES)
            age_days = rng.randint(12 * 365, 19 * 365)
            born = end - timedelta(days=age_days)
            domain = rng.choices(domains, domain_weights)[0]
            local = _slug(f"{first}.{last}") + str(rng.randint(1, 99) if rng.random() < 0.6 else "")
            young.append(
                Young(unique(local, domain), f"{first} {last}", first, born, tuple(parents), school)
            )
    partners = [Person(a, a.split("@")[1].split(".")[0].title(), "team") for a in PARTNERS]
    for _ in range(70):
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        org = rng.choice(
            (
                "acme-ai",
                "brightdata",
                "civic-labs",
                "northcode",
                "openminds",
                "datakind",
                "futurebuild",
                "techforgood",
                "cloudnine",
                "greenbyte",
            )
        )
        email = unique(_slug(f"{first}.{last}"), f"{org}.example")
        partners.append(Person(email, f"{first} {last}", first))
    # The child whose history is exported: a 14-year-old with two guardians.
    child = next(
        y
        for y in young[500:]
        if len(y.guardians) == 2 and 14 * 365 < (end - y.born).days < 15 * 365
    )
    return Cast(staff, cumulative, roles, young, guardians, schools, partners, child)


def _accumulate(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


_TAIL_WEIGHTS = list(_accumulate([1.0 / (rank + 1) for rank in range(len(TAIL))]))


def tail_word(rng: random.Random) -> str:
    """A word of the long tail, drawn with weight 1/rank."""
    return TAIL[bisect.bisect_left(_TAIL_WEIGHTS, rng.random() * _TAIL_WEIGHTS[-1])]


def prose(rng: random.Random, slots: dict[str, str]) -> str:
    """A paragraph of two to four everyday sentences."""
    s = dict(slots, topic=rng.choice(TOPICS), thing=rng.choice(THINGS))
    s.update(w1=tail_word(rng), w2=tail_word(rng), w3=tail_word(rng), w4=tail_word(rng))
    return " ".join(x.format(**s) for x in rng.sample(PROSE, rng.randint(2, 4)))


def is_minor(y: Young, when: datetime) -> bool:
    day = when.astimezone(ZONE).date()
    return (day.year - y.born.year - ((day.month, day.day) < (y.born.month, y.born.day))) < 18


# ------------------------------------------------------------------------------ the times


def received_times(n: int, end: date, seed: int) -> list[float]:
    """`n` epoch seconds over DAYS days ending `end`, sorted: term-time weekdays, office hours."""
    rng = random.Random(f"times:{seed}")
    start = end - timedelta(days=DAYS)
    days = [start + timedelta(days=d) for d in range(DAYS)]

    def weight(day: date) -> float:
        w = (1.0, 1.0, 1.0, 1.0, 0.9, 0.12, 0.07)[day.weekday()]
        if day.month == 8 or (day.month == 12 and day.day > 21) or (day.month == 1 and day.day < 3):
            w *= 0.3
        return w

    cum_days = list(_accumulate([weight(d) for d in days]))
    picks = rng.choices(range(DAYS), cum_weights=cum_days, k=n)
    out: list[float] = []
    for d in picks:
        r = rng.random()
        if r < 0.86:
            hour = min(17.5, max(8.0, rng.gauss(12.5, 2.6)))
        elif r < 0.98:
            hour = rng.uniform(17.5, 22.5)
        else:
            hour = rng.uniform(0.0, 7.5) if rng.random() < 0.5 else rng.uniform(22.5, 24.0)
        day = days[d]
        local = datetime(day.year, day.month, day.day, tzinfo=ZONE) + timedelta(hours=hour)
        # Adding hours to an aware datetime keeps the wall-clock offset of midnight; good enough.
        out.append(local.timestamp())
    out.sort()
    return out


# ------------------------------------------------------------------------------ messages


@dataclass
class Draft:
    """One message as the generator builds it; becomes raw bytes and an ArchiveRecord."""

    sender: Person
    to: list[Person]
    cc: list[Person] = field(default_factory=list)
    bcc: list[Person] = field(default_factory=list)  # envelope only (not in the header)
    subject: str = ""
    paragraphs: list[str] = field(default_factory=list)
    sign_off: str = ""
    signature: str = ""
    quoted: list[str] = field(default_factory=list)
    quoted_from: Person | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    attachment: tuple[str, str] | None = None  # (file name, content type)
    html: bool = False
    in_reply_to: str | None = None
    minors: list[Young] = field(default_factory=list)


class Writer:
    """Makes messages for one batch; everything drawn from its own seeded generator."""

    def __init__(self, cast: Cast, rng: random.Random) -> None:
        self.cast = cast
        self.rng = rng
        self.child = cast.child

    # -- small pickers
    def staff(self) -> Person:
        weights = self.cast.staff_weights
        return self.cast.staff[bisect.bisect_left(weights, self.rng.random() * weights[-1])]

    def colleague(self, not_: Person) -> Person:
        while True:
            p = self.cast.staff[self.rng.randrange(len(self.cast.staff))]
            if p is not not_:
                return p

    def young(self, involve_child: bool) -> Young:
        if involve_child:
            return self.child
        while True:
            y = self.cast.young[self.rng.randrange(len(self.cast.young))]
            if y is not self.child:
                return y

    def tail(self) -> str:
        return tail_word(self.rng)

    def slots(self, name: str, when: datetime) -> dict[str, str]:
        r = self.rng
        day = when + timedelta(days=r.randint(1, 21))
        return {
            "name": name,
            "topic": r.choice(TOPICS),
            "event": r.choice(EVENTS),
            "museum": r.choice(MUSEUMS),
            "place": r.choice(PLACES),
            "project": f"{r.choice(PROJECT_ADJ)} {r.choice(PROJECT_NOUN)}",
            "thing": r.choice(THINGS),
            "thing2": r.choice(THINGS),
            "day": f"{day:%A}",
            "date": f"{day:%A} {day.day} {day:%B}",
            "time": r.choice(("9:30", "10:00", "10:30", "13:00", "14:00", "15:30", "16:00")),
            "end": r.choice(("12:00", "15:00", "16:30", "17:00")),
            "n": str(r.randint(8, 60)),
            "ref": f"TIA-{r.randint(1000, 99999)}",
            "term": r.choice(TERMS),
            "month": f"{when:%B %Y}",
            "year": str(r.randint(8, 13)),
            "w1": self.tail(),
            "w2": self.tail(),
            "w3": self.tail(),
            "w4": self.tail(),
        }

    def fill(self, pool: Sequence[str], slots: dict[str, str], k: int) -> list[str]:
        return [t.format(**slots) for t in self.rng.sample(pool, min(k, len(pool)))]

    # -- kinds of mail
    def to_young(self, when: datetime, involve_child: bool, reply: bool) -> Draft:
        r = self.rng
        sender = self.staff()
        y = self.young(involve_child)
        d = Draft(sender, [y], list(y.guardians), minors=[y])
        s = self.slots(y.first, when)
        minor = is_minor(y, when)
        if r.random() < 0.92:
            d.cc.append(self.colleague(sender))
        elif minor:
            d.findings.append(
                _finding(
                    "missing_required_cc",
                    "copy-another-staff-or-volunteer",
                    "flag",
                    y.email,
                    roles=["staff"],
                )
            )
        if reply:
            question = r.choice(QUESTIONS).format(**s)
            d.subject = "Re: " + r.choice(YOUNG_SUBJECTS).format(**s)
            d.quoted = [question, f"Thanks, {y.first}"]
            d.quoted_from = y
            d.in_reply_to = f"{r.getrandbits(60):x}@{y.email.split('@')[1]}"
            d.paragraphs = [f"Hi {y.first},", r.choice(REPLY_OPENERS).format(**s)]
        else:
            d.subject = r.choice(YOUNG_SUBJECTS).format(**s)
            d.paragraphs = [r.choice(GREETINGS).format(**s)]
        d.paragraphs += self.fill(YOUNG_BODY, s, r.randint(2, 4))
        if minor:
            self._risks(d, y)
        return d

    def _risks(self, d: Draft, y: Young) -> None:
        """The findings a message to a minor can carry, with the text behind each."""
        r = self.rng
        roll = r.random()
        if roll < 0.025:
            d.cc = [p for p in d.cc if p not in y.guardians]
            d.findings.append(
                _finding(
                    "missing_required_cc",
                    "copy-parents-under-18",
                    "reject",
                    y.email,
                    roles=["guardian"],
                )
            )
        elif roll < 0.035:
            d.findings.append(_finding("no_consent", "parental-approval", "reject", y.email))
        if r.random() < 0.03:
            d.sign_off = r.choice(INFORMAL)
            d.findings.append(
                _finding(
                    "informal_sign_off",
                    "professional-sign-off",
                    "flag",
                    y.email,
                    evidence=d.sign_off,
                )
            )
        if r.random() < 0.01:
            phone = f"07700 900{r.randint(100, 999)}"
            d.paragraphs.append(f"If anything changes just text me on my mobile, {phone}.")
            d.findings.append(
                _finding(
                    "personal_contact_details",
                    "no-personal-contact-details",
                    "flag",
                    y.email,
                    evidence=phone,
                )
            )
        if r.random() < 0.004:
            phrase = r.choice(RISK_PHRASES)
            d.paragraphs.append(f"Well done today. {phrase[0].upper()}{phrase[1:]}.")
            d.findings.append(
                _finding("risk_language", "grooming-indicators", "flag", y.email, evidence=phrase)
            )
        if r.random() < 0.01:
            partner = self.cast.partners[r.randrange(len(self.cast.partners))]
            d.cc.append(partner)
            d.findings.append(
                _finding(
                    "unapproved_third_party",
                    "no-copies-beyond-parents-and-mentors",
                    "flag",
                    partner.email,
                )
            )
        if r.random() < 0.003:
            d.findings.append(
                _finding("sender_not_permitted", "no-personal-accounts", "flag", y.email)
            )

    def to_guardian(self, when: datetime, involve_child: bool) -> Draft:
        r = self.rng
        sender = self.staff()
        y = self.young(involve_child)
        g = list(y.guardians)
        s = self.slots(y.first, when)
        d = Draft(sender, g[:1], g[1:], minors=[y])
        if involve_child or r.random() < 0.35:
            d.cc.append(y)
        if r.random() < 0.5:
            d.cc.append(self.colleague(sender))
        d.subject = r.choice(GUARDIAN_SUBJECTS).format(**s)
        d.paragraphs = [f"Dear {g[0].first},", *self.fill(GUARDIAN_BODY, s, r.randint(2, 4))]
        if y in d.cc and is_minor(y, when) and r.random() < 0.02:
            d.sign_off = r.choice(INFORMAL)
            d.findings.append(
                _finding(
                    "informal_sign_off",
                    "professional-sign-off",
                    "flag",
                    y.email,
                    evidence=d.sign_off,
                )
            )
        return d

    def to_school(self, when: datetime) -> Draft:
        r = self.rng
        sender = self.staff()
        y = self.young(False)
        name, contacts = self.cast.schools[y.school]
        s = self.slots(y.first, when)
        s["school"] = name
        d = Draft(sender, [r.choice(contacts)])
        if r.random() < 0.5:
            d.cc.append(self.colleague(sender))
        d.subject = r.choice(SCHOOL_SUBJECTS).format(**s)
        d.paragraphs = [r.choice(("Dear colleague,", "Hello,", "Dear team,", "Hi,"))]
        d.paragraphs += self.fill(SCHOOL_BODY, s, r.randint(2, 4))
        return d

    def internal(self, when: datetime) -> Draft:
        r = self.rng
        sender = self.staff()
        team = [p for p in r.sample(self.cast.staff, r.randint(1, 3)) if p is not sender]
        team = team or [self.colleague(sender)]
        s = self.slots(team[0].first, when)
        d = Draft(sender, team[:1], team[1:])
        d.subject = r.choice(INTERNAL_SUBJECTS).format(**s)
        d.paragraphs = [f"Hi {team[0].first},", *self.fill(INTERNAL_BODY, s, r.randint(2, 4))]
        return d

    def to_partner(self, when: datetime) -> Draft:
        r = self.rng
        sender = self.staff()
        partner = self.cast.partners[r.randrange(len(self.cast.partners))]
        s = self.slots(partner.first, when)
        d = Draft(sender, [partner])
        if r.random() < 0.3:
            d.cc.append(self.colleague(sender))
        d.subject = r.choice(PARTNER_SUBJECTS).format(**s)
        d.paragraphs = ["Hello,", *self.fill(PARTNER_BODY, s, r.randint(2, 3))]
        return d

    def newsletter(self, when: datetime, involve_child: bool) -> Draft:
        r = self.rng
        sender = self.staff()
        people: list[Person] = []
        minors: list[Young] = []
        for _ in range(r.randint(12, 45)):
            y = self.young(False)
            minors.append(y)
            people.append(y)
            if r.random() < 0.5:
                people.append(y.guardians[0])
        if involve_child:
            minors.append(self.child)
            people.insert(r.randrange(len(people) + 1), self.child)
        s = self.slots("everyone", when)
        d = Draft(sender, [sender], minors=minors)
        if r.random() < 0.2:  # visible recipients: the pack moves them to Bcc
            d.to = people
            d.findings.append(
                _finding(
                    "mass_mail_visible_recipients",
                    "mass-mail-bcc",
                    "rewrite",
                    None,
                    count=len(people),
                )
            )
        else:
            d.bcc = people
        d.subject = r.choice(MASS_SUBJECTS).format(**s)
        d.paragraphs = ["Hello everyone,", *self.fill(MASS_BODY, s, r.randint(3, 5))]
        return d

    def draft(self, when: datetime, involve_child: bool) -> Draft:
        r = self.rng
        if involve_child:
            kind = r.choices(("young", "reply", "guardian", "mass"), (55, 15, 25, 5))[0]
        else:
            kind = r.choices(
                ("young", "reply", "guardian", "school", "internal", "partner", "mass"),
                (36, 10, 18, 12, 14, 6, 4),
            )[0]
        if kind == "young":
            d = self.to_young(when, involve_child, reply=False)
        elif kind == "reply":
            d = self.to_young(when, involve_child, reply=True)
        elif kind == "guardian":
            d = self.to_guardian(when, involve_child)
        elif kind == "school":
            d = self.to_school(when)
        elif kind == "internal":
            d = self.internal(when)
        elif kind == "partner":
            d = self.to_partner(when)
        else:
            d = self.newsletter(when, involve_child)
        if r.random() < 0.01:
            d.paragraphs.append(r.choice(RARE_SENTENCES).format(rare=r.choice(RARE)))
        if not d.sign_off:
            d.sign_off = r.choice(SIGN_OFFS) + f"\n{d.sender.first}"
        if r.random() < 0.6:
            role = self.cast.roles[d.sender.email]
            d.signature = f"{d.sender.name}\n{role} | Teens in AI\nwww.teensinai.example"
        roll = r.random()
        if roll < 0.15:
            d.attachment = r.choice(ATTACHMENTS)
        elif roll < 0.45:
            d.html = True
        return d


def _finding(
    code: str, rule: str, action: str, recipient: str | None, evidence: str = "", **params: Any
) -> dict[str, Any]:
    """A finding as the pipeline archives it: Finding.as_dict() with its wording."""
    return {
        "code": code,
        "rule": rule,
        "action": action,
        "recipient": recipient,
        "evidence": evidence,
        "params": params,
        "explanation": EXPLANATIONS[code],
        "correction": CORRECTIONS[code],
    }


def _strength(action: str) -> int:
    return ("deliver", "flag", "rewrite", "defer", "reject").index(action)


RULE_IDS = (
    "parental-approval",
    "copy-parents-under-18",
    "copy-another-staff-or-volunteer",
    "mass-mail-bcc",
    "no-copies-beyond-parents-and-mentors",
    "professional-sign-off",
    "no-personal-accounts",
    "no-personal-contact-details",
    "no-private-messages",
    "no-sexting",
    "grooming-indicators",
)


def _header_addr(p: Person) -> str:
    return formataddr((p.name, p.email), charset="utf-8") if p.name else p.email


def _header_text(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def _wrap(paragraphs: Sequence[str], width: int = 76) -> list[str]:
    """Lines of at most `width` characters, as a mail client wraps (textwrap is too slow)."""
    lines: list[str] = []
    for p in paragraphs:
        for part in p.split("\n"):
            line = ""
            for word in part.split():
                if line and len(line) + 1 + len(word) > width:
                    lines.append(line)
                    line = word
                else:
                    line = f"{line} {word}" if line else word
            lines.append(line)
        lines.append("")
    return lines


def _estimate(d: Draft) -> int:
    """Roughly the size `render` will give (headers, text, signature, quote, HTML copy)."""
    text = sum(len(p) + 2 for p in d.paragraphs) + len(d.sign_off) + len(d.signature)
    text += sum(len(q) + 4 for q in d.quoted) + (100 if d.quoted else 0)
    people = len(d.to) + len(d.cc)
    return 420 + 60 * people + text * (2 if d.html else 1) + (200 if d.html else 0)


def render(
    d: Draft, when: datetime, message_id: str, rng: random.Random, target: int
) -> tuple[bytes, str]:
    """The RFC 5322 bytes a mail client would submit, and the new text the parser finds."""
    body_lines = _wrap(d.paragraphs)
    new_lines = [*body_lines, *d.sign_off.split("\n")]
    text_lines = list(new_lines)
    if d.signature:
        text_lines += ["-- ", *d.signature.split("\n")]
    if d.quoted and d.quoted_from is not None:
        prior = when - timedelta(hours=rng.randint(2, 60))
        text_lines += [
            "",
            f"On {prior:%a}, {prior.day} {prior:%b %Y} at {prior:%H:%M}, "
            f"{d.quoted_from.name} <{d.quoted_from.email}> wrote:",
        ]
        text_lines += ["> " + line if line else ">" for line in _wrap(d.quoted)]
    headers = [
        f"From: {_header_addr(d.sender)}",
        f"To: {', '.join(_header_addr(p) for p in d.to)}",
    ]
    if d.cc:
        headers.append(f"Cc: {', '.join(_header_addr(p) for p in d.cc)}")
    headers += [
        f"Subject: {_header_text(d.subject)}",
        f"Date: {format_datetime(when.astimezone(ZONE))}",
        f"Message-ID: <{message_id}>",
    ]
    if d.in_reply_to:
        headers += [f"In-Reply-To: <{d.in_reply_to}>", f"References: <{d.in_reply_to}>"]
    headers += [
        rng.choice(
            (
                "User-Agent: Mozilla Thunderbird",
                "X-Mailer: Microsoft Outlook 16.0",
                "X-Mailer: Apple Mail (2.3774)",
                "User-Agent: Roundcube Webmail/1.6",
            )
        ),
        "MIME-Version: 1.0",
    ]
    plain = "\r\n".join(text_lines).rstrip("\r\n") + "\r\n"
    text_part = "Content-Type: text/plain; charset=utf-8; format=flowed\r\n" + (
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + plain
    )
    boundary = f"=_{rng.getrandbits(64):016x}"
    if d.attachment is not None:
        name, ctype = d.attachment
        head = len("\r\n".join(headers)) + len(text_part) + 400
        size = max(300, int((target - head) * 0.74))
        payload = base64.encodebytes(rng.randbytes(size)).decode().replace("\n", "\r\n")
        body = (
            f"This is a multi-part message in MIME format.\r\n--{boundary}\r\n{text_part}"
            f'--{boundary}\r\nContent-Type: {ctype}; name="{name}"\r\n'
            f'Content-Disposition: attachment; filename="{name}"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{payload}--{boundary}--\r\n"
        )
        headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    elif d.html:
        escaped = "".join(
            f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in [*d.paragraphs, d.sign_off]
        )
        html_part = (
            "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f'<html><body style="font-family: Arial">{escaped}</body></html>\r\n'
        )
        body = f"--{boundary}\r\n{text_part}--{boundary}\r\n{html_part}--{boundary}--\r\n"
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    else:
        headers[-1:] = [
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8; format=flowed",
            "Content-Transfer-Encoding: 8bit",
        ]
        body = plain
    raw = ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")
    new_text = "\n".join(new_lines).strip()
    return raw, new_text


def record_for(
    d: Draft, when: datetime, queue_id: str, rng: random.Random, target: int
) -> ArchiveRecord:
    message_id = f"{rng.getrandbits(64):016x}.{queue_id.lower()}@{DOMAIN}"
    # Pad with more of the same kind of prose until the message reaches its size (an
    # attachment makes up the size by itself).
    if d.attachment is None:
        size = _estimate(d)
        slots = {"name": d.to[0].first, "month": f"{when:%B}"}
        while size < target + 150:
            extra = prose(rng, slots)
            d.paragraphs.insert(max(1, len(d.paragraphs) - 1), extra)
            size += (len(extra) + 2) * (2 if d.html else 1)
    raw, new_text = render(d, when, message_id, rng, target)
    verdict = "deliver"
    for f in d.findings:
        if _strength(f["action"]) > _strength(verdict):
            verdict = f["action"]
    envelope_to = tuple(dict.fromkeys(p.email for p in (*d.to, *d.cc, *d.bcc)))
    named = {p.email for p in (*d.to, *d.cc)}
    youngest = None
    for y in d.minors:
        if is_minor(y, when) and (youngest is None or y.born > youngest):
            youngest = y.born
    return ArchiveRecord(
        queue_id=queue_id,
        received_at=when,
        raw=raw,
        verdict=verdict,
        client_address="10.20.0.15",
        helo="mail.teensinai.example",
        auth_user=d.sender.email,
        envelope_from=d.sender.email,
        envelope_to=envelope_to,
        from_addr=d.sender.email,
        to_addrs=tuple(dict.fromkeys(p.email for p in d.to)),
        cc_addrs=tuple(dict.fromkeys(p.email for p in d.cc)),
        bcc_addrs=tuple(e for e in envelope_to if e not in named),
        subject=d.subject,
        message_id=message_id,
        body_text=new_text,
        mode="enforce",
        findings=tuple(d.findings),
        evaluation={
            "pack": PACK,
            "evaluated": list(RULE_IDS),
            "hits": list(dict.fromkeys(f["rule"] for f in d.findings)),
            "deliver_at": None,
            "defects": [],
        },
        dedupe=True,
        youngest_minor_born=youngest,
    )


# The worker's state, built once per process from the seed.
_CAST: Cast | None = None


def _init_worker(seed: int, end: date) -> None:
    global _CAST
    _CAST = make_cast(seed, end)


def generate_batch(job: tuple[int, int, list[float], frozenset[int]]) -> list[ArchiveRecord]:
    """The records of one batch: message numbers start..start+len(times), times given."""
    seed, start, times, child = job
    assert _CAST is not None
    rng = random.Random(f"batch:{seed}:{start}")
    writer = Writer(_CAST, rng)
    out = []
    for offset, stamp in enumerate(times):
        n = start + offset
        when = datetime.fromtimestamp(stamp, UTC)
        d = writer.draft(when, n in child)
        target = int(min(6000, max(2000, rng.lognormvariate(math.log(3300), 0.3))))
        out.append(record_for(d, when, f"B{n:09d}{rng.getrandbits(20):05X}", rng, target))
    return out


def check_record(record: ArchiveRecord) -> list[str]:
    """Differences between a generated record and what the product's parser reads in its raw."""
    m = parse_message(
        record.raw,
        envelope_from=record.envelope_from,
        envelope_to=record.envelope_to,
        sent_at=record.received_at,
    )
    problems = []
    pairs = (
        ("from", m.sender.email, record.from_addr),
        ("to", tuple(a.email for a in m.to), record.to_addrs),
        ("cc", tuple(a.email for a in m.cc), record.cc_addrs),
        ("bcc", tuple(a.email for a in m.bcc), record.bcc_addrs),
        ("subject", m.subject, record.subject),
        ("message_id", m.message_id, record.message_id),
        ("new_text", m.new_text.strip(), record.body_text),
    )
    for name, parsed, generated in pairs:
        if parsed != generated:
            problems.append(f"{name}: parser {parsed!r} != generated {generated!r}")
    return problems


# -------------------------------------------------------------------------- text templates

GREETINGS = ("Hi {name},", "Hello {name},", "Dear {name},", "Good morning {name},")
REPLY_OPENERS = (
    "Thanks for your message, good question.",
    "Thanks for letting us know.",
    "No problem at all, thanks for asking.",
    "Great to hear from you.",
)
QUESTIONS = (
    "Do I need to bring my own {thing} on {day}?",
    "Sorry I can't make the {event} on {day}, I have a dentist appointment. Can I catch up?",
    "Is the {topic} session still at {time}? And which room is it in?",
    "Can my friend come to the {event} too? She is really into {topic}.",
    "I finished the {project} prototype but the {w1} part does not work yet, can you help?",
    "What time does it finish on {day}? My mum is picking me up.",
)
YOUNG_SUBJECTS = (
    "{event} on {day}",
    "Your {topic} project",
    "Feedback on {project}",
    "Room change for {day}",
    "Reminder: {event} {date}",
    "Next steps for {project}",
    "Certificate for the {event}",
    "Mentoring session {date}",
    "Your pitch for the {event}",
    "Work experience placement",
    "Questions about the {topic} module",
    "Slides from today's {topic} session",
    "Team allocation for the {event}",
    "Well done at the showcase!",
    "{project}: judges' comments",
    "Trip to {museum}",
)
YOUNG_BODY = (
    "Just a reminder that the {event} is on {date} from {time} to {end} in {place}. "
    "Please bring your {thing} and your {thing2}.",
    "Thanks for all your hard work on {project} this week. The way you used {topic} to "
    "tackle the {w1} problem was really impressive, and the judges noticed it too.",
    "The session on {day} has moved to {place}. Everything else stays the same, and we will "
    "start at {time} sharp.",
    "I have attached the slides from today's {topic} session. Have a look at the exercise "
    "on slide {year} before next week; it uses the same {w2} dataset.",
    "Your mentor for the {term} will be in touch this week. They work on {topic} and are "
    "looking forward to hearing about {project}.",
    "Please make sure your parent or carer has returned the consent form for the trip to "
    "{museum}. We cannot take anyone without it.",
    "For next week, try to get the {w1} feature of {project} working and write two or three "
    "sentences about how it helps {w2} users.",
    "Lunch is provided on the day. If you have any allergies or dietary needs that we do not "
    "know about yet, please tell us before {day}.",
    "Your certificate for completing the {event} is attached. Well done, you should be proud "
    "of what your team achieved.",
    "We will meet at {place} at {time}. If you are running late, please ask your parent or "
    "carer to call the office on 020 7946 0321.",
    "The {event} judging panel includes people who work on {topic} at {w3} companies, so "
    "practise your two-minute pitch and keep the demo short.",
    "Remember the online safety rules we talked about: only use your programme account, and "
    "never share passwords or personal details in the group chat.",
)
GUARDIAN_SUBJECTS = (
    "Consent form for the {event}",
    "{event}: travel arrangements",
    "Trip to {museum} on {date}",
    "Payment for the {event}",
    "Update on {name}'s progress",
    "Medical and dietary information",
    "Photo permissions for the {event}",
    "Pick-up time on {day}",
    "Welcome to the {term} programme",
    "{name}'s work experience placement",
)
GUARDIAN_BODY = (
    "{name} has been invited to the {event} on {date}. It runs from {time} to {end} at "
    "{place}, and all materials are provided.",
    "Please complete the attached consent form and return it by {day}. Without it we are "
    "unable to take {name} on the trip to {museum}.",
    "There is no charge for the {event}; travel costs are covered by our sponsors. If you "
    "need help with transport, please let us know.",
    "{name} has made excellent progress this {term}, especially with {topic}. Their project, "
    "{project}, was one of the strongest in the group.",
    "We ask every family to keep medical and dietary information up to date. Please tell us "
    "about any changes before the {event}.",
    "Photographs may be taken at the {event} for our newsletter. If you would prefer {name} "
    "not to appear in any images, please reply to this email.",
    "Pick-up is from {place} at {end}. If someone other than you will be collecting {name}, "
    "please tell us their name in advance.",
    "As always, we copy parents and carers into every message we send to young people, and "
    "another member of staff is copied too.",
    "Our safeguarding lead can be reached at safeguarding@teensinai.example if you have any "
    "concerns at all.",
)
SCHOOL_SUBJECTS = (
    "Work experience placement for {name}",
    "Attendance at the {event}",
    "Partnership: {topic} workshops for Year {year}",
    "Safeguarding contact for the {event}",
    "Risk assessment for the visit on {date}",
    "Invoice {ref}",
    "{school} and Teens in AI: {term}",
)
SCHOOL_BODY = (
    "Thank you for supporting {name}'s place on the {event}. We will share the timetable and "
    "risk assessment with you by {day}.",
    "Could you confirm the name of the member of staff who will accompany the group from "
    "{school} on {date}?",
    "We would like to offer {topic} workshops for Year {year} students during the {term}. "
    "Each session lasts about two hours and needs a room with projector and Wi-Fi.",
    "Please find our invoice {ref} attached. Payment terms are 30 days; our bank details are "
    "on the invoice.",
    "For safeguarding purposes, our lead for the {event} is the programme manager, and all "
    "of our staff and volunteers hold an enhanced DBS check.",
    "{n} students from {school} took part in the {event}. Attendance and feedback were "
    "excellent, and several asked about the {term} programme.",
)
INTERNAL_SUBJECTS = (
    "Rota for {day}",
    "Planning the {event}",
    "Notes from the {topic} session",
    "Room booking: {place}",
    "Volunteer briefing {date}",
    "Budget for the {event}",
    "Safeguarding training refresher",
    "Mentor pairings for the {term}",
    "Re: {event} feedback",
)
INTERNAL_BODY = (
    "Can you cover the {topic} session on {day}? I have a clash with the {event} in {place}.",
    "Here are my notes from the {topic} session. Attendance was {n}, and the {w1} exercise "
    "went better than last time.",
    "I have booked {place} for {date} from {time}. We still need someone to set up the "
    "{thing} and the {thing2}.",
    "The budget for the {event} is nearly final. Catering for {n} people comes to about the "
    "same as last {term}; travel is the main unknown.",
    "Reminder that the safeguarding training refresher is due before the {term}. Please "
    "book a slot with the DSL this week.",
    "Mentor pairings are in the shared folder. Please check that every mentor has a second "
    "member of staff copied into their emails with young people.",
    "The {w1} issue from last week is resolved. Let me know if you see it again.",
)
PARTNER_SUBJECTS = (
    "Booking {ref} for {date}",
    "Venue access on {day}",
    "Speaker for the {event}",
    "Catering for {n} people",
    "Equipment loan: {thing}",
)
PARTNER_BODY = (
    "I am writing to confirm our booking {ref} for {date}. We expect {n} young people and "
    "four members of staff, arriving at {time}.",
    "Could you send over your risk assessment and the details of the named contact on the "
    "day? We share these with schools and parents.",
    "We would love you to speak at the {event} about your work on {topic}. Talks are ten "
    "minutes, followed by questions from the young people.",
    "Please note two vegetarian, one halal and one gluten-free meal in the catering order.",
    "Thank you again for hosting us. The feedback from the group was wonderful.",
)
MASS_SUBJECTS = (
    "Teens in AI newsletter: {month}",
    "{event} this {term}: sign up now",
    "Summer programme: places still available",
    "Reminder for everyone: {event} on {date}",
)
MASS_BODY = (
    "Applications for the {event} are now open. It is free, runs during the {term}, and "
    "no previous experience of {topic} is needed.",
    "Congratulations to the team behind {project}, who won the {event} last month with an "
    "idea that uses {topic} to help {w1} users.",
    "Our next family evening is on {date} at {place}. Parents, carers and young people are "
    "all welcome; there will be demos, pizza and a short talk on {topic}.",
    "Please remember to keep your contact details and consent forms up to date; you can "
    "reply to this message with any changes.",
    "We are looking for volunteers with experience in {topic}. If you know someone who might "
    "be interested, please forward this newsletter.",
    "Dates for your diary: {event} on {date}, and the showcase at the end of the {term}.",
)
PROSE = (
    "We talked about {w1} and {w2} and how they fit together.",
    "The group spent most of the time on {topic}, with a short break for {w3}.",
    "Several people asked about the {w1}, so we will look at it again next time.",
    "Please bring your {thing} if you can.",
    "If you have questions about the {w2}, just reply to this message.",
    "We will also have time for {w3} and {w4} at the end.",
    "Last time the {w1} took longer than planned, so we will start promptly.",
    "Thanks again for your patience with the {w2} changes this month.",
    "The feedback about the {w4} was really positive.",
    "There will be a short quiz on {topic} to see how everyone is getting on.",
    "We are still waiting to hear back about the {w1} from {w2}.",
    "It would help to have a look at the {w3} notes beforehand.",
    "Our volunteers will be around to help with the {w1} and the {thing}.",
    "Everyone who took part will get a certificate in {month}.",
    "If the {w4} is a problem for you, let us know and we will find another way.",
    "Thanks, {name}, for the suggestion about {w2}.",
)
SIGN_OFFS = (
    "Kind regards,",
    "Best wishes,",
    "Many thanks,",
    "Thanks,",
    "Best regards,",
    "Thanks and best wishes,",
    "Regards,",
    "With thanks,",
)
ATTACHMENTS = (
    ("consent-form.pdf", "application/pdf"),
    ("risk-assessment.pdf", "application/pdf"),
    ("timetable.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("agenda.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("certificate.pdf", "application/pdf"),
    ("photo.jpg", "image/jpeg"),
    ("invoice.pdf", "application/pdf"),
    ("slides.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
EXPLANATIONS = {
    "missing_required_cc": "A message to someone under 18 must copy the people the policy names.",
    "no_consent": "There is no parental approval on record for contacting this young person.",
    "mass_mail_visible_recipients": "The message showed every recipient's address to all.",
    "informal_sign_off": "The message to a young person ends with an informal sign-off.",
    "personal_contact_details": "The message shares a personal phone number with a young person.",
    "unapproved_third_party": "The message copies someone who is neither a parent nor staff.",
    "risk_language": "The message contains language associated with secrecy or grooming.",
    "sender_not_permitted": "The sender may not write to this young person.",
}
CORRECTIONS = {
    "missing_required_cc": "Copy a parent or guardian (and another member of staff) and resend.",
    "no_consent": "Record the parents' approval in the directory, then resend.",
    "mass_mail_visible_recipients": "Recipients were moved to Bcc before delivery.",
    "informal_sign_off": "Sign off professionally, e.g. 'Kind regards'.",
    "personal_contact_details": "Use the organisation's phone numbers and addresses.",
    "unapproved_third_party": "Remove the third party, or add them to the directory.",
    "risk_language": "The safeguarding lead has been told.",
    "sender_not_permitted": "Ask the programme manager to write instead.",
}

# ------------------------------------------------------------------------------ running


@dataclass
class Query:
    label: str
    text: str


@dataclass
class QueryResult:
    label: str
    text: str
    total: int
    first_page: list[int]
    times_ms: list[float]
    exact: bool = True
    matches: int = 0  # the exact number, counted once more without a limit (not timed)

    @property
    def shown(self) -> str:
        return f"{q_more(self.exact)}{self.total:,}"

    @property
    def p50(self) -> float:
        return percentile(self.times_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.times_ms, 95)


@dataclass
class ExportResult:
    fmt: str
    count: int
    ids_s: list[float]
    total_s: list[float]
    size: int
    manifest_sha256: str


@dataclass
class DbResult:
    name: str
    version: str
    messages: int = 0
    ingest_s: float = 0.0
    store_s: float = 0.0
    deciles: list[float] = field(default_factory=list)  # msg/s per tenth of the load
    vacuum_s: float = 0.0
    size_bytes: int = 0
    queries: list[QueryResult] = field(default_factory=list)
    exports: list[ExportResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def q_more(exact: bool) -> str:
    return "" if exact else "more than "


def _answer(q: QueryResult) -> tuple[int, bool, int, list[int]]:
    return q.total, q.exact, q.matches, q.first_page


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def queries_for(cast: Cast, end: date) -> list[Query]:
    busiest = cast.staff[0]
    month = end.replace(day=1)
    term_start = date(end.year - 1, 9, 1)
    term_end = date(end.year - 1, 12, 20)
    return [
        Query("a child's history", f"contact:{cast.child.email}"),
        Query(
            "staff member, one term",
            f"from:{busiest.email} after:{term_start:%Y-%m-%d} before:{term_end:%Y-%m-%d}",
        ),
        Query("risk language this month", f"flag:risk_language after:{month:%Y-%m-%d}"),
        Query("rejected (bounced)", "verdict:reject"),
        Query("phrase", '"consent form"'),
        Query("word OR word", "hackathon OR robotics"),
        Query("NOT", "trip -museum"),
        Query("subject phrase", 'subject:"work experience"'),
        Query("common word (most of the archive)", "thanks"),
        Query("rare word", "axolotl"),
    ]


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last < 0.5 and self.done < self.total:
            return
        self.last = now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        width = 30
        filled = int(width * self.done / self.total)
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done:,}/{self.total:,}"
            f" {rate:,.0f} msg/s, {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min "
        )
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def settings_for(url: str, state: Path) -> Settings:
    data = {
        "organisation": {"domains": [DOMAIN], "timezone": "Europe/London", "name": "Teens in AI"},
        "database": {"url": url, "state_dir": str(state)},
        "policy": {"pack": PACK},
    }
    return settings_from_dict(data, state / "gateway.toml")


@contextlib.contextmanager
def _generated(
    jobs: Sequence[tuple[int, int, list[float], frozenset[int]]], workers: int, seed: int, end: date
) -> Iterator[Iterator[list[ArchiveRecord]]]:
    """Batches in order, made by `workers` processes a few batches ahead (bounded memory)."""
    if not workers:
        _init_worker(seed, end)
        yield map(generate_batch, jobs)
        return
    pool = multiprocessing.get_context("fork").Pool(workers, _init_worker, (seed, end))

    def run() -> Iterator[list[ArchiveRecord]]:
        ahead: collections.deque[Any] = collections.deque()
        todo = iter(jobs)
        for job in itertools.islice(todo, 2 * workers + 2):
            ahead.append(pool.apply_async(generate_batch, (job,)))
        while ahead:
            batch = ahead.popleft().get()
            for job in itertools.islice(todo, 1):
                ahead.append(pool.apply_async(generate_batch, (job,)))
            yield batch

    try:
        yield run()
    finally:
        pool.terminate()
        pool.join()


def ingest(engine: Engine, n: int, seed: int, end: date, workers: int, result: DbResult) -> None:
    times = received_times(n, end, seed)
    child_count = min(CHILD_MESSAGES, max(1, n // 5))
    child = set(random.Random(f"child:{seed}").sample(range(n), child_count))
    jobs = [
        (
            seed,
            start,
            times[start : start + BATCH],
            frozenset(i for i in range(start, min(n, start + BATCH)) if i in child),
        )
        for start in range(0, n, BATCH)
    ]
    del times
    archive = Archive(engine)
    bar = Progress(n, f"{result.name} ingest")
    checked = 0
    decile_marks: list[tuple[int, float]] = [(0, 0.0)]
    started = time.perf_counter()
    with _generated(jobs, workers, seed, end) as batches:
        for batch in batches:
            for i in range(0, len(batch), VALIDATE_EVERY):
                problems = check_record(batch[i])
                checked += 1
                if problems:
                    raise SystemExit(f"generated message {batch[i].queue_id}: {problems}")
            t0 = time.perf_counter()
            stored = archive.store_many([(record, ()) for record in batch])
            result.store_s += time.perf_counter() - t0
            if any(s.duplicate for s in stored):
                raise SystemExit("a generated message was taken for a duplicate")
            before = bar.done
            bar.update(len(batch))
            if bar.done * 10 // n != before * 10 // n:
                decile_marks.append((bar.done, time.perf_counter() - started))
    result.ingest_s = time.perf_counter() - started
    result.messages = n
    for (n0, t0), (n1, t1) in itertools.pairwise(decile_marks):
        result.deciles.append((n1 - n0) / (t1 - t0) if t1 > t0 else 0.0)
    result.notes.append(f"{checked} generated messages re-read by the product's parser: identical")


def run_queries(
    engine: Engine, queries: Sequence[Query], repeats: int, count_limit: int | None = COUNT_LIMIT
) -> list[QueryResult]:
    search = ArchiveSearch(engine)
    out = []
    for q in queries:
        parse(q.text)  # fail early on a typo
        times: list[float] = []
        page = None
        for i in range(SEARCH_WARMUP + repeats):
            t0 = time.perf_counter()
            page = search.search(
                q.text,
                actor="bench",
                at=datetime.now(UTC),
                detail={"via": "bench"},
                count_limit=count_limit,
            )
            elapsed = (time.perf_counter() - t0) * 1000
            if i >= SEARCH_WARMUP:
                times.append(elapsed)
        assert page is not None
        matches = search.run(parse(q.text), limit=1, count_limit=None).total
        out.append(
            QueryResult(
                q.label, q.text, page.total, [h.id for h in page.hits], times, page.exact, matches
            )
        )
        print(
            f"  {q.label:<36} {matches:>9,} matches  p50 {percentile(times, 50):7.1f} ms"
            f"  p95 {percentile(times, 95):7.1f} ms",
            file=sys.stderr,
        )
    return out


def run_exports(engine: Engine, cast: Cast, work: Path, repeats: int) -> list[ExportResult]:
    env = environment_for(PACK)
    query = f"contact:{cast.child.email}"
    node = parse(query)
    out = []
    for fmt in ("mbox", "eml-zip"):
        ids_s, total_s = [], []
        done = None
        manifest_sha = ""
        for i in range(repeats):
            target = work / f"child-{i}.{'mbox' if fmt == 'mbox' else 'zip'}"
            t0 = time.perf_counter()
            ids = matching_ids(engine, node)
            t1 = time.perf_counter()
            captured: list[str] = []
            render_cover = cover_page(
                env,
                contact=cast.child.email,
                name=cast.child.name,
                organisation="Teens in AI",
                exported_by="bench",
                at=datetime.now(UTC),
                query=query,
            )

            def cover(
                manifest: list[dict[str, Any]],
                _r: Callable[..., str] = render_cover,
                _c: list[str] = captured,
            ) -> str:
                _c.append(json.dumps([m["sha256"] for m in manifest]))
                return _r(manifest)

            done = export(engine, ids, fmt=fmt, out=target, cover=cover)
            total_s.append(time.perf_counter() - t0)
            ids_s.append(t1 - t0)
            manifest_sha = hashlib.sha256(captured[0].encode()).hexdigest()
            size = target.stat().st_size
            for path in (target, *done.extra_files):
                path.unlink(missing_ok=True)
        assert done is not None
        out.append(ExportResult(fmt, done.count, ids_s, total_s, size, manifest_sha))
        print(
            f"  export {fmt:<8} {done.count:,} messages  median "
            f"{statistics.median(total_s):.2f} s (ids {statistics.median(ids_s):.2f} s)",
            file=sys.stderr,
        )
    return out


def pg_create(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _meta_get(engine: Engine, key: str = META_KEY) -> dict[str, Any] | None:
    with engine.connect() as conn:
        value = conn.execute(text("SELECT value FROM meta WHERE key = :k"), {"k": key}).scalar()
    return json.loads(value) if value else None


def stored_ingest(engine: Engine) -> dict[str, Any]:
    """The ingest figures the run that filled this archive recorded beside it."""
    return _meta_get(engine, META_KEY + ".ingest") or {}


def _meta_put(engine: Engine, key: str, params: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM meta WHERE key = :k"), {"k": key})
        conn.execute(
            text("INSERT INTO meta (key, value, updated_at) VALUES (:k, :v, :t)"),
            {"k": key, "v": json.dumps(params), "t": datetime.now(UTC).replace(tzinfo=None)},
        )


def bench_database(
    name: str, args: argparse.Namespace, work: Path, cast: Cast, end: date
) -> DbResult:
    if name == "sqlite":
        path = args.sqlite_path or work / "archive.db"
        if not args.reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        version = sqlite3.sqlite_version
    else:
        if not args.reuse:
            pg_create(args.pg_database)
        url = f"{PG_SERVER}/{args.pg_database}"
        version = ""
    engine = open_engine(settings_for(url, work), pool_size=2)
    result = DbResult(name, version)
    try:
        if name == "postgresql":
            with engine.connect() as conn:
                result.version = str(conn.execute(text("SHOW server_version")).scalar())
                for setting in ("shared_buffers", "work_mem", "effective_cache_size"):
                    value = conn.execute(text(f"SHOW {setting}")).scalar()
                    result.notes.append(f"{setting} = {value}")
        params = {"seed": args.seed, "messages": args.messages, "end": end.isoformat()}
        if args.reuse:
            stored = _meta_get(engine)
            if stored != params:
                raise SystemExit(f"{name}: --reuse needs an archive made with {params}: {stored}")
            result.messages = args.messages
            loaded = stored_ingest(engine)
            for key in ("ingest_s", "store_s", "deciles", "vacuum_s"):
                setattr(result, key, loaded.get(key, getattr(result, key)))
            result.notes.append(
                f"ingest figures from the run that filled this archive ({loaded.get('at')}); "
                "this run only searched and exported"
            )
        else:
            ingest(engine, args.messages, args.seed, end, args.workers, result)
            _meta_put(engine, META_KEY, params)
            if name == "postgresql":
                t0 = time.perf_counter()
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
                result.vacuum_s = time.perf_counter() - t0
            ingested = {
                "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                "ingest_s": result.ingest_s,
                "store_s": result.store_s,
                "deciles": result.deciles,
                "vacuum_s": result.vacuum_s,
            }
            _meta_put(engine, META_KEY + ".ingest", ingested)
        if name == "sqlite":
            result.size_bytes = sum(
                Path(f"{path}{s}").stat().st_size
                for s in ("", "-wal")
                if Path(f"{path}{s}").exists()
            )
        else:
            with engine.connect() as conn:
                result.size_bytes = int(
                    conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
                )
        print(f"{name}: searching", file=sys.stderr)
        result.queries = run_queries(
            engine, queries_for(cast, end), args.repeats, args.count_limit or None
        )
        result.exports = run_exports(engine, cast, work, EXPORT_REPEATS)
    finally:
        engine.dispose()
        if name == "postgresql" and not args.keep:
            pg_drop(args.pg_database)
    return result


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    import sqlalchemy

    return (
        f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}"
    )


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def report(
    results: Sequence[DbResult],
    args: argparse.Namespace,
    cast: Cast,
    end: date,
    total_s: float,
    loads: tuple[str, str],
) -> str:
    now = datetime.now(UTC)
    lines = [
        "# Archive at scale",
        "",
        f"Generated by `bench/archive_scale.py` on {now:%Y-%m-%d %H:%M} UTC in "
        f"{total_s / 60:.0f} min: {machine()}.",
        "",
        f"{args.messages:,} generated messages (seed {args.seed}, received over the 3 years "
        f"to {end}), written by `Archive.store_many` in batches of {BATCH:,}; the exported "
        f"child ({cast.child.email}) is on "
        f"{min(CHILD_MESSAGES, max(1, args.messages // 5)):,} of them. Searches run through "
        f"`ArchiveSearch.search` (parse, count exact up to "
        f"{args.count_limit:,}, page of 50, audit row), {SEARCH_WARMUP} warm-up "
        f"runs then {args.repeats} timed; exports through `matching_ids` + `export` with the "
        f"cover page, median of {EXPORT_REPEATS}. Targets: search p95 ≤ "
        f"{SEARCH_TARGET_MS:.0f} ms, a 2,000-message export ≤ {EXPORT_TARGET_S:.0f} s.",
        "",
        f"Load average at start / end: {loads[0]} / {loads[1]} (the machine is shared; other "
        "work running at the same time shows up here).",
        "",
    ]
    if len(results) == 2:
        a, b = results
        same = all(
            _answer(x) == _answer(y) for x, y in zip(a.queries, b.queries, strict=True)
        ) and all(
            (x.count, x.manifest_sha256) == (y.count, y.manifest_sha256)
            for x, y in zip(a.exports, b.exports, strict=True)
        )
        verdict = (
            "identical (every total, every first page, every export manifest)."
            if same
            else "**DIFFERENT** (totals, first pages or export manifests differ)."
        )
        lines += [f"Results on the two databases: {verdict}", ""]
    for r in results:
        title = "SQLite" if r.name == "sqlite" else "PostgreSQL"
        lines += [f"## {title} {r.version}", ""]
        if r.ingest_s:
            rate = r.messages / r.ingest_s
            lines += [
                "| ingest | value |",
                "|---|---:|",
                f"| messages | {r.messages:,} |",
                f"| wall time | {r.ingest_s / 60:.1f} min |",
                f"| msg/s (wall, generation overlapped) | {rate:,.0f} |",
                f"| msg/s (inside `store_many` only) | {r.messages / r.store_s:,.0f} |",
                f"| msg/s first / last tenth | {r.deciles[0]:,.0f} / {r.deciles[-1]:,.0f} |",
            ]
            if r.vacuum_s:
                lines.append(f"| VACUUM ANALYZE after loading | {r.vacuum_s:.0f} s |")
            lines.append(f"| database size | {r.size_bytes / 1e9:.2f} GB |")
            lines.append("")
        lines += [
            "| # | query | matches | shown as | p50 ms | p95 ms |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for i, q in enumerate(r.queries, start=1):
            flag = " ⚠" if q.p95 > SEARCH_TARGET_MS else ""
            lines.append(
                f"| {i} | {q.label}: `{q.text}` | {q.matches:,} | {q.shown} | {_ms(q.p50)} | "
                f"{_ms(q.p95)}{flag} |"
            )
        every = [t for q in r.queries for t in q.times_ms]
        if every:
            lines.append(
                f"| | **all queries** | | | **{_ms(percentile(every, 50))}** | "
                f"**{_ms(percentile(every, 95))}** |"
            )
        lines += [
            "",
            "| export (one child) | messages | ids s | total s (median) | runs s | size |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for e in r.exports:
            flag = " ⚠" if statistics.median(e.total_s) > EXPORT_TARGET_S else ""
            lines.append(
                f"| {e.fmt} | {e.count:,} | {statistics.median(e.ids_s):.2f} | "
                f"{statistics.median(e.total_s):.2f}{flag} | "
                f"{', '.join(f'{t:.2f}' for t in e.total_s)} | {e.size / 1e6:.1f} MB |"
            )
        if r.notes:
            lines += ["", *[f"- {n}" for n in r.notes]]
        lines.append("")
    lines += [
        "Reading the tables: *matches* is the exact number (counted once more, untimed); "
        "*shown as* is what the search returned, which counts exactly only up to its limit. "
        "*ids s* is `matching_ids` (the `contact:` query, oldest first); "
        "*total s* includes it, reading and decompressing every message, hashing, writing the "
        "file and manifests, and rendering the cover page. ⚠ marks a miss of the target.",
        "",
        "Rerun: `.venv/bin/python bench/archive_scale.py` (see its docstring for options).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the markdown results")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=None,
        help="last day of the archive (default: today, UTC)",
    )
    parser.add_argument("--repeats", type=int, default=SEARCH_REPEATS)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes generating messages while the main one stores (0: none)",
    )
    parser.add_argument("--sqlite-path", type=Path, default=None)
    parser.add_argument("--pg-database", default="bench_archive")
    parser.add_argument(
        "--count-limit",
        type=int,
        default=COUNT_LIMIT,
        help=f"exact counts up to this many matches (default: the product's, {COUNT_LIMIT:,}; "
        "0: always exact)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="search and export an archive kept by an earlier run (--keep)",
    )
    args = parser.parse_args(argv)
    if args.messages < 10:
        parser.error("--messages must be at least 10")
    end = args.end or datetime.now(UTC).date()
    started = time.perf_counter()
    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    cast = make_cast(args.seed, end)
    print(
        f"cast: {len(cast.staff)} staff, {cast.outside:,} outside addresses; "
        f"child {cast.child.email}",
        file=sys.stderr,
    )
    names = (
        ("sqlite", "postgresql")
        if args.db == "both"
        else (("postgresql",) if args.db == "postgres" else ("sqlite",))
    )
    work = Path(tempfile.mkdtemp(prefix="archive-scale-", dir="/var/tmp"))
    results = []
    try:
        for name in names:
            results.append(bench_database(name, args, work, cast, end))
    finally:
        if args.keep and args.sqlite_path is None and "sqlite" in names:
            print(f"kept {work / 'archive.db'}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_end = " ".join(f"{x:.1f}" for x in os.getloadavg())
    markdown = report(
        results, args, cast, end, time.perf_counter() - started, (load_start, load_end)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
