"""An import's audit row describes the list it replaced, read in its own transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine

from gateway.directory.model import StaffMember
from gateway.store.audit import AuditLog, AuditNote
from gateway.store.directory import DirectoryStore

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def _staff(*emails: str) -> list[StaffMember]:
    return [StaffMember(e, e.split("@")[0], 3, date(2027, 9, 1), True, True) for e in emails]


def test_an_imports_audit_note_is_made_from_what_it_replaced_not_an_earlier_read(engine: Engine):
    """`directory import staff` names the leads it added and removed: two imports run one
    after the other must each name their own change, even when the second read the list
    before the first committed."""
    store = DirectoryStore(engine)
    store.replace("staff", _staff("a@safe.example"), NOW)
    read_too_early = store.staff()
    store.replace("staff", _staff("b@safe.example"), NOW)  # another import, meanwhile
    seen = []

    def note(before):
        seen.append(before)
        return AuditNote(actor="it", action="directory_import", at=NOW, detail={})

    store.replace("staff", _staff("c@safe.example"), NOW, audit=note)
    assert [s.email for s in read_too_early] == ["a@safe.example"]
    assert [[s.email for s in before] for before in seen] == [["b@safe.example"]]
    assert [e.action for e in AuditLog(engine).entries()] == ["directory_import"]


def test_two_imports_at_once_each_describe_the_list_they_replaced(engine: Engine):
    """Run at the same moment (two admins, or a script and an admin), each import's audit row
    names the change it made: the second waits for the first, then reads what it left."""
    import threading

    store = DirectoryStore(engine)
    store.replace("staff", _staff("a@safe.example"), NOW)
    first_inside = threading.Event()
    release = threading.Event()
    seen: dict[str, list[str]] = {}

    def slow_note(before):
        seen["first"] = [s.email for s in before]
        first_inside.set()
        release.wait(5)  # hold the first import open while the second starts
        return AuditNote(actor="one", action="directory_import", at=NOW, detail={})

    def quick_note(before):
        seen["second"] = [s.email for s in before]
        return AuditNote(actor="two", action="directory_import", at=NOW, detail={})

    first = threading.Thread(
        target=store.replace,
        args=("staff", _staff("b@safe.example"), NOW),
        kwargs={"audit": slow_note},
    )
    first.start()
    assert first_inside.wait(5)
    second = threading.Thread(
        target=store.replace,
        args=("staff", _staff("c@safe.example"), NOW),
        kwargs={"audit": quick_note},
    )
    second.start()
    second.join(0.3)
    assert second.is_alive(), "the second import waits for the first"
    release.set()
    first.join(5)
    second.join(5)
    assert seen == {"first": ["a@safe.example"], "second": ["b@safe.example"]}
    assert [s.email for s in store.staff()] == ["c@safe.example"]
