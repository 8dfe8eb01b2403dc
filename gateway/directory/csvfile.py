"""Reading staff.csv and contacts.csv into directory values, all or nothing.

Every problem in a file becomes a ``RowError``; a file with any error raises one
``DirectoryFileError`` listing them all, so an operator fixes the file in one pass and a
half-applied import can never happen.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from email_validator import EmailNotValidError

from gateway.config import read_at_most
from gateway.directory.model import MAX_LEVEL, MIN_LEVEL, Contact, StaffMember, normalise_email
from gateway.message.addresses import checked_address

STAFF_COLUMNS = ("email", "name", "safeguarding_level", "training_expires", "dbs_checked", "dsl")
CONTACT_COLUMNS = (
    "email",
    "name",
    "date_of_birth",
    "category",
    "guardian_emails",
    "school_emails",
    "consent",
)

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_STAFF_CSV = DEMO_DIR / "staff.csv"
DEMO_CONTACTS_CSV = DEMO_DIR / "contacts.csv"

_TRUE = frozenset({"yes", "y", "true", "1"})
_FALSE = frozenset({"no", "n", "false", "0", ""})
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CATEGORY = re.compile(r"[a-z0-9_]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHOW_LIMIT = 60


@dataclass(frozen=True)
class RowError:
    """One problem in a directory file.

    ``line`` is the physical line where the row starts (the header is line 1); 0 means the
    file as a whole (unreadable). ``column`` is the normalised header name, or None.
    """

    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.reason}"


class DirectoryFileError(ValueError):
    """A directory file that cannot be imported; ``errors`` lists every problem found."""

    def __init__(self, path: str | Path, errors: Iterable[RowError]) -> None:
        self.path = str(path)
        self.errors = tuple(errors)
        if not self.errors:
            raise ValueError("DirectoryFileError needs at least one RowError")
        super().__init__(self._summary())

    def _summary(self) -> str:
        first = self.errors[0]
        text = f"{self.path}: {first}"
        more = len(self.errors) - 1
        if more:
            text += f" (and {more} more error{'s' if more > 1 else ''})"
        return text

    def lines(self) -> tuple[str, ...]:
        """Every error as ``path: line N, column C: reason``, one per entry."""
        return tuple(f"{self.path}: {error}" for error in self.errors)

    def __reduce__(self) -> tuple[type[DirectoryFileError], tuple[str, tuple[RowError, ...]]]:
        # The default reduce would call __init__ with the message only.
        return (type(self), (self.path, self.errors))


@dataclass(frozen=True)
class ImportDiff:
    """What importing ``new`` over ``old`` changes; keys are primary addresses, sorted."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged"
        )


# ---------------------------------------------------------------- reading rows


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


class _Problems:
    """Errors for one file, collected rather than raised so that every row is reported."""

    def __init__(self) -> None:
        self.errors: list[RowError] = []

    def add(self, line: int, column: str | None, reason: str) -> None:
        self.errors.append(RowError(line, column, reason))


def _show(value: str) -> str:
    """A value quoted for an error message: one line, and not too long."""
    text = value.encode("unicode_escape").decode("ascii") if _CONTROL.search(value) else value
    if len(text) > _SHOW_LIMIT:
        text = text[: _SHOW_LIMIT - 3] + "..."
    return f"'{text}'"


def _header_key(name: str) -> str:
    # "Date of Birth", " date-of-birth " and "DATE_OF_BIRTH" all name one column.
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _decode(data: bytes, problems: _Problems) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.add(
            line,
            None,
            f"the file is not UTF-8 (byte 0x{data[exc.start]:02x}); "
            "save it as 'CSV UTF-8' and import it again",
        )
        return None


def _rows(text: str, required: tuple[str, ...], problems: _Problems) -> Iterator[_Row]:
    """Rows as dicts keyed by normalised header name, each with the line it starts on.

    Stops (after recording why) at a broken header or unreadable CSV; the caller raises.
    """
    # strict: a stray quote is an error to report, not a silently merged run of rows.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: dict[str, int] | None = None
    while True:
        line = reader.line_num + 1  # a row starts on the line after the previous one ended
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            reason = str(exc)
            if "unexpected end of data" in reason:
                reason = "a quoted value starting on this line is never closed"
            problems.add(line, None, f"cannot read the CSV: {reason}")
            return
        if not any(cell.strip() for cell in cells):
            continue  # blank lines (and Excel's rows of bare commas) carry nothing
        if columns is None:
            columns = _parse_header(cells, line, required, problems)
            if columns is None:
                return
            continue
        values = {
            name: (cells[index] if index < len(cells) else "").strip()
            for name, index in columns.items()
        }
        yield _Row(line, values)
    if columns is None:
        problems.add(1, None, f"the file is empty; expected a header row: {','.join(required)}")


def _parse_header(
    cells: list[str], line: int, required: tuple[str, ...], problems: _Problems
) -> dict[str, int] | None:
    columns: dict[str, int] = {}
    ok = True
    keys = {_header_key(cell) for cell in cells}
    for kind, theirs in (("staff", STAFF_COLUMNS), ("contacts", CONTACT_COLUMNS)):
        if theirs != required and set(theirs) <= keys and not set(required) <= keys:
            # The other list's file: one line that says so, not a column-by-column list.
            problems.add(
                line,
                None,
                f"this is a {kind} file (its header has the {kind} list's columns): import it with "
                f"`safeguard directory import {kind} FILE`",
            )
            return None
    for index, cell in enumerate(cells):
        key = _header_key(cell)
        if key not in required:
            continue  # extra columns are the operator's own notes
        if key in columns:
            problems.add(line, key, f"column '{key}' appears twice in the header")
            ok = False
        columns.setdefault(key, index)
    for key in required:
        if key not in columns:
            problems.add(line, key, f"missing required column '{key}'")
            ok = False
    return columns if ok else None


# ---------------------------------------------------------------- field parsers


def _email(value: str, column: str, line: int, problems: _Problems) -> str | None:
    try:
        checked_address(value)
    except EmailNotValidError as exc:
        hint = ""
        if ";" not in value and ("," in value or " " in value.strip()):
            hint = " (separate several addresses with ';')"
        problems.add(line, column, f"{column} {_show(value)} is not a valid address: {exc}{hint}")
        return None
    return normalise_email(value)


def _email_list(value: str, column: str, line: int, problems: _Problems) -> list[str] | None:
    """Addresses separated by ';', blanks ignored, repeats dropped; None if any is bad."""
    found: list[str] = []
    ok = True
    for item in value.split(";"):
        if not item.strip():
            continue
        address = _email(item.strip(), column, line, problems)
        if address is None:
            ok = False
        elif address not in found:
            found.append(address)
    return found if ok else None


def _yes_no(value: str, column: str, line: int, problems: _Problems) -> bool | None:
    key = value.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    problems.add(line, column, f"{column} {_show(value)} is not yes or no")
    return None


def _date(value: str, column: str, line: int, problems: _Problems) -> date | None:
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.add(line, column, f"{column} {_show(value)} is not a date (expected YYYY-MM-DD)")
    return None


def _name(value: str, line: int, problems: _Problems) -> str | None:
    if not value:
        problems.add(line, "name", "name is empty")
        return None
    if _CONTROL.search(value):
        problems.add(
            line, "name", f"name {_show(value)} contains a line break or control character"
        )
        return None
    return value


def _level(value: str, line: int, problems: _Problems) -> int | None:
    expected = f"expected a whole number {MIN_LEVEL}-{MAX_LEVEL}"
    if not value:
        problems.add(line, "safeguarding_level", f"safeguarding_level is empty ({expected})")
        return None
    if value.isascii() and value.isdigit() and MIN_LEVEL <= int(value) <= MAX_LEVEL:
        return int(value)
    problems.add(
        line,
        "safeguarding_level",
        f"safeguarding_level {_show(value)} is not a level ({expected})",
    )
    return None


def _category(value: str, line: int, problems: _Problems) -> str | None:
    if not value:
        problems.add(line, "category", "category is empty (e.g. participant, volunteer)")
        return None
    # Packs key rules on the category, so "Work experience" must equal work_experience.
    category = re.sub(r"[\s\-]+", "_", value.lower())
    if not _CATEGORY.fullmatch(category):
        problems.add(
            line,
            "category",
            f"category {_show(value)} should be letters, digits and spaces only "
            "(e.g. participant, work_experience, volunteer)",
        )
        return None
    return category


class _SeenAddresses:
    """First line of each address in one file, to report a repeat against its original."""

    def __init__(self) -> None:
        self._lines: dict[str, int] = {}

    def claim(self, address: str, line: int, column: str, problems: _Problems) -> bool:
        earlier = self._lines.get(address)
        if earlier is not None:
            problems.add(
                line, column, f"{column} {_show(address)} is already listed on line {earlier}"
            )
            return False
        self._lines[address] = line
        return True


# ---------------------------------------------------------------- whole files


def _staff_row(row: _Row, seen: _SeenAddresses, problems: _Problems) -> StaffMember | None:
    v, line = row.values, row.line
    before = len(problems.errors)
    email = None
    if not v["email"]:
        problems.add(line, "email", "email is empty")
    else:
        email = _email(v["email"], "email", line, problems)
        if email is not None and not seen.claim(email, line, "email", problems):
            email = None
    name = _name(v["name"], line, problems)
    level = _level(v["safeguarding_level"], line, problems)
    expires = None
    if v["training_expires"]:  # empty means no training on record
        expires = _date(v["training_expires"], "training_expires", line, problems)
    dbs = _yes_no(v["dbs_checked"], "dbs_checked", line, problems)
    dsl = _yes_no(v["dsl"], "dsl", line, problems)
    if len(problems.errors) > before:
        return None
    assert email is not None and name is not None and level is not None
    assert dbs is not None and dsl is not None
    return StaffMember(email, name, level, expires, dbs, dsl)


def _contact_row(
    row: _Row, seen: _SeenAddresses, today: date, problems: _Problems
) -> Contact | None:
    v, line = row.values, row.line
    before = len(problems.errors)
    emails = _email_list(v["email"], "email", line, problems)
    if emails is not None:
        if not emails:
            problems.add(line, "email", "email is empty")
        for address in emails:
            seen.claim(address, line, "email", problems)
    name = _name(v["name"], line, problems)
    born = None
    if not v["date_of_birth"]:
        problems.add(line, "date_of_birth", "date_of_birth is empty (expected YYYY-MM-DD)")
    else:
        born = _date(v["date_of_birth"], "date_of_birth", line, problems)
        if born is not None and born > today:
            problems.add(
                line, "date_of_birth", f"date_of_birth {_show(v['date_of_birth'])} is in the future"
            )
    category = _category(v["category"], line, problems)
    guardians = _email_list(v["guardian_emails"], "guardian_emails", line, problems)
    schools = _email_list(v["school_emails"], "school_emails", line, problems)
    consent = _yes_no(v["consent"], "consent", line, problems)
    own = set(emails or ())
    for column, listed in (("guardian_emails", guardians), ("school_emails", schools)):
        for address in sorted(own.intersection(listed or ())):
            problems.add(line, column, f"{column} lists the contact's own address {_show(address)}")
    if len(problems.errors) > before:
        return None
    assert emails and name is not None and born is not None and category is not None
    assert guardians is not None and schools is not None and consent is not None
    return Contact(tuple(emails), name, born, category, tuple(guardians), tuple(schools), consent)


_T = TypeVar("_T")


def _parse(
    data: bytes | str,
    source: str | Path,
    required: tuple[str, ...],
    make: Callable[[_Row, _SeenAddresses, _Problems], _T | None],
) -> tuple[_T, ...]:
    problems = _Problems()
    text = _decode(data, problems) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    made: list[_T] = []
    if text is not None:
        seen = _SeenAddresses()
        for row in _rows(text, required, problems):
            item = make(row, seen, problems)
            if item is not None:
                made.append(item)
    if problems.errors:
        raise DirectoryFileError(source, problems.errors)
    return tuple(made)


# Far more than any organisation's export (~300 bytes a contact: 300,000 contacts), and a bound
# on what a wrong path (`/dev/zero`, a disk image) can make the import hold in memory.
MAX_FILE_BYTES = 100_000_000


def _read(path: Path) -> bytes:
    try:
        data = read_at_most(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise DirectoryFileError(
            path, [RowError(0, None, f"cannot read the file: {exc.strerror or exc}")]
        ) from exc
    if data is None:
        reason = f"larger than {MAX_FILE_BYTES // 1_000_000} MB: not a directory CSV export"
        raise DirectoryFileError(path, [RowError(0, None, reason)])
    return data


def parse_staff_csv(
    data: bytes | str, source: str | Path = "<staff.csv>"
) -> tuple[StaffMember, ...]:
    """Staff rows from CSV content (e.g. an upload); ``source`` names it in errors."""
    return _parse(data, source, STAFF_COLUMNS, _staff_row)


def parse_contacts_csv(
    data: bytes | str, source: str | Path = "<contacts.csv>", *, today: date | None = None
) -> tuple[Contact, ...]:
    """Contact rows from CSV content; ``today`` bounds date_of_birth (default: the local date)."""
    # The caller should pass the organisation's local date; the host's date is a fallback.
    day = today if today is not None else date.today()
    return _parse(
        data,
        source,
        CONTACT_COLUMNS,
        lambda row, seen, problems: _contact_row(row, seen, day, problems),
    )


def read_staff_csv(path: Path) -> tuple[StaffMember, ...]:
    """Every row of a staff.csv, or DirectoryFileError listing every bad row."""
    return parse_staff_csv(_read(path), path)


def read_contacts_csv(path: Path, *, today: date | None = None) -> tuple[Contact, ...]:
    """Every row of a contacts.csv, or DirectoryFileError listing every bad row."""
    return parse_contacts_csv(_read(path), path, today=today)


# ---------------------------------------------------------------- diffs


def _keyed(items: Iterable[_T], key: Callable[[_T], str], what: str) -> dict[str, _T]:
    keyed: dict[str, _T] = {}
    for item in items:
        k = normalise_email(key(item))
        if k in keyed:
            raise ValueError(f"two {what} share the primary address {k!r}")
        keyed[k] = item
    return keyed


def _diff(old: dict[str, _T], new: dict[str, _T]) -> ImportDiff:
    common = old.keys() & new.keys()
    changed = sorted(k for k in common if old[k] != new[k])
    return ImportDiff(
        added=tuple(sorted(new.keys() - old.keys())),
        changed=tuple(changed),
        removed=tuple(sorted(old.keys() - new.keys())),
        unchanged=len(common) - len(changed),
    )


def diff_staff(old: Iterable[StaffMember], new: Iterable[StaffMember]) -> ImportDiff:
    return _diff(
        _keyed(old, lambda m: m.email, "staff rows"), _keyed(new, lambda m: m.email, "staff rows")
    )


def diff_contacts(old: Iterable[Contact], new: Iterable[Contact]) -> ImportDiff:
    """Keyed by primary address; a contact whose first address changes but who keeps another
    is the same person, changed (under the new first address), not removed and added."""
    before = _keyed(old, lambda c: c.email, "contacts")
    after = _keyed(new, lambda c: c.email, "contacts")
    owner = {normalise_email(e): k for k, c in before.items() for e in c.emails}
    for key in sorted(after.keys() - before.keys()):
        for email in after[key].emails:
            was = owner.get(normalise_email(email))
            if was is not None and was in before and was not in after:
                before[key] = before.pop(was)
                break
    return _diff(before, after)
