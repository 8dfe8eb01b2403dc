"""`safeguard directory import`: a bad row is reported with its line and nothing is applied."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.cli.actor import local_user
from gateway.config import load_settings
from gateway.service import open_engine
from gateway.store.audit import AuditLog
from gateway.store.directory import DirectoryStore

STAFF = (
    "email,name,safeguarding_level,training_expires,dbs_checked,dsl\n"
    "dana.lee@safe.example,Dana Lee,3,2027-03-31,yes,yes\n"
    "alex.teacher@safe.example,Alex Teacher,1,2027-09-01,yes,no\n"
)
CONTACTS = (
    "email,name,date_of_birth,category,guardian_emails,school_emails,consent\n"
    "sam.minor@home.example,Sam Taylor,2011-05-04,participant,priya.shah@parents.example,,yes\n"
)


def _contacts(count: int) -> str:
    """A contacts.csv of `count` young people, each with a parent to copy."""
    return (
        CONTACTS.splitlines()[0]
        + "\n"
        + "".join(
            f"child{n}@home.example,Child {n},2012-01-0{1 + n % 9},participant,"
            f"parent{n}@parents.example,,yes\n"
            for n in range(count)
        )
    )


def _directory(config: Path) -> DirectoryStore:
    return DirectoryStore(open_engine(load_settings(config)))


def test_import_reports_added_then_changed_and_removed(run, tmp_path: Path):
    staff = tmp_path / "staff.csv"
    staff.write_text(STAFF)
    first = run("directory", "import", "staff", str(staff))
    assert first.exit_code == 0, first.output
    assert "2 added, 0 changed, 0 removed" in first.output

    # Alex takes over as the lead: a file with none is refused (below).
    changed = STAFF.replace("Alex Teacher,1,2027-09-01,yes,no", "Alex Teacher,2,2027-09-01,yes,yes")
    staff.write_text(changed.splitlines()[0] + "\n" + changed.splitlines()[2] + "\n")
    second = run("directory", "import", "staff", str(staff))
    assert second.exit_code == 0, second.output
    assert "0 added, 1 changed, 1 removed" in second.output
    assert "removed: dana.lee@safe.example" in second.output


def test_a_bad_row_names_its_line_and_column_and_nothing_is_applied(run, tmp_path: Path):
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CONTACTS)
    assert run("directory", "import", "contacts", str(contacts)).exit_code == 0
    contacts.write_text(CONTACTS + "ruby@home.example,Ruby,2013-13-40,participant,,,yes\n")
    bad = run("directory", "import", "contacts", str(contacts))
    assert bad.exit_code == 2
    assert "line 3" in bad.output and "date_of_birth" in bad.output
    assert "Traceback" not in bad.output
    # The earlier import is untouched: re-importing the good file changes nothing.
    contacts.write_text(CONTACTS)
    again = run("directory", "import", "contacts", str(contacts))
    assert "0 added, 0 changed, 0 removed, 1 unchanged" in again.output


def test_a_missing_file_is_one_clear_line(run, tmp_path: Path):
    result = run("directory", "import", "staff", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "nope.csv" in result.output and "Traceback" not in result.output


def test_a_file_no_export_could_be_is_refused_before_it_fills_memory(run):
    """`directory import staff /dev/zero` read until memory ran out; now it stops at the
    bound, with one line saying why."""
    result = run("directory", "import", "staff", "/dev/zero")
    assert result.exit_code == 2
    assert "/dev/zero" in result.output and "larger than 100 MB" in result.output
    assert "Traceback" not in result.output


def test_several_bad_rows_are_one_line_on_stderr_and_all_listed_on_stdout(run, tmp_path: Path):
    """interface.md: bad input is "one line on stderr naming the file, line and reason"; the
    other rows to fix are listed on stdout, so one run shows the admin all of them."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        CONTACTS
        + "ruby@home.example,Ruby,2013-13-40,participant,,,yes\n"
        + "not-an-address,Kai,2012-01-01,participant,,,yes\n"
    )
    bad = run("directory", "import", "contacts", str(contacts))
    assert bad.exit_code == 2
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith(f"safeguard: {contacts}: line 3, column date_of_birth")
    assert "(and 1 more error" in bad.stderr
    assert "The other rows to fix:" in bad.stdout and "line 4, column email" in bad.stdout


def test_an_import_is_on_the_audit_log_with_who_became_or_stopped_being_a_lead(
    run, config: Path, tmp_path: Path
):
    """The DSL column decides who may open the console: a change to it is a change of who
    reads the archive, and the audit log says who made it. Young people's addresses are not
    copied into the log (it outlives the directory): contacts are counted."""
    staff, contacts = tmp_path / "staff.csv", tmp_path / "contacts.csv"
    staff.write_text(STAFF)
    contacts.write_text(CONTACTS)
    assert run("directory", "import", "staff", str(staff)).exit_code == 0
    staff.write_text(
        STAFF.replace("Alex Teacher,1,2027-09-01,yes,no", "Alex Teacher,1,2027-09-01,yes,yes")
    )
    assert run("directory", "import", "staff", str(staff)).exit_code == 0
    assert run("directory", "import", "contacts", str(contacts)).exit_code == 0
    engine = open_engine(load_settings(config))
    entries = AuditLog(engine).entries(action="directory_import")
    engine.dispose()
    first, second, third = sorted(entries, key=lambda e: e.id)
    assert {e.actor for e in entries} == {local_user()}
    assert first.detail["leads_added"] == ["dana.lee@safe.example"] and first.detail["added"] == 2
    assert second.detail["leads_added"] == ["alex.teacher@safe.example"]
    assert second.detail["leads_removed"] == [] and second.detail["changed"] == 1
    assert third.detail["kind"] == "contacts" and third.detail["added"] == 1
    assert "sam.minor@home.example" not in str(third.detail) + third.query


def test_a_category_no_rule_of_the_pack_names_is_warned_of_with_the_nearest(
    run, config: Path, tmp_path: Path
):
    """bmt: "Mail to work-experience placements (15-17) must copy a parent/guardian or the
    school representative". A review found that "work experiance" in the CSV silently took
    Leo out of that rule; the import now says so, naming the category meant."""
    config.write_text(config.read_text() + '[policy]\npack = "bmt"\n')
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        CONTACTS.splitlines()[0]
        + "\nleo@home.example,Leo,2009-05-04,work experiance,k@parents.example,,yes\n"
        + "wes@home.example,Wes,2009-06-01,work_experience,w@parents.example,,yes\n"
        # A category near none of the pack's is the organisation's own: not warned of.
        + "ada@home.example,Ada,2012-01-01,participant,a@parents.example,,yes\n"
    )
    result = run("directory", "import", "contacts", str(contacts))
    assert result.exit_code == 0, result.output
    assert (
        "safeguard: warning: 1 young person has the category 'work_experiance', which no rule "
        "of the pack 'bmt' names (volunteer, work_experience, work_experience_enquiry): the "
        "rules kept for a category do not apply to them. Did you mean 'work_experience'?"
    ) in result.output
    assert "participant" not in result.output


def test_a_pack_whose_rules_apply_whatever_the_category_warns_of_none(run, tmp_path: Path):
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CONTACTS.replace(",participant,", ",anything_at_all,"))
    result = run("directory", "import", "contacts", str(contacts))
    assert result.exit_code == 0 and "warning" not in result.output


def test_the_other_lists_file_is_named_as_such(run, tmp_path: Path):
    """A review: a contacts file imported as staff said "missing required column
    safeguarding_level", not that it was the other list's file."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CONTACTS)
    result = run("directory", "import", "staff", str(contacts))
    assert result.exit_code == 2
    assert "this is a contacts file (its header has the contacts list's columns)" in result.output
    assert "safeguard directory import contacts FILE" in result.output
    staff = tmp_path / "staff.csv"
    staff.write_text(STAFF)
    result = run("directory", "import", "contacts", str(staff))
    assert result.exit_code == 2 and "this is a staff file" in result.output


def test_a_partial_contacts_file_is_refused_and_the_directory_kept(
    run, config: Path, tmp_path: Path
):
    """A review: a contacts file of one row replaced the list of 13, "1 added, 0 changed, 12
    removed", at once and exit 0. A partial file silently removed every young person's
    protection: mail to them without a parent's copy was delivered and archived as "Sent,
    nothing found"."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(_contacts(13))
    assert run("directory", "import", "contacts", str(contacts)).exit_code == 0
    one_row = tmp_path / "one_row.csv"
    one_row.write_text(CONTACTS)
    result = run("directory", "import", "contacts", str(one_row))
    assert result.exit_code == 2
    assert result.stderr == (
        f"safeguard: {one_row} would remove 13 of the 13 contacts the directory has (keeping "
        "0, adding 1). If this file is the whole list, run the import again with "
        "--allow-removals; otherwise check you exported the full list.\n"
    )
    assert "would remove: child0@home.example" in result.stdout
    assert "Imported" not in result.output and "Traceback" not in result.output
    store = _directory(config)
    kept = {c.email for c in store.contacts()}
    store.engine.dispose()
    assert kept == {f"child{n}@home.example" for n in range(13)}


def test_a_file_that_is_the_whole_list_is_applied_with_allow_removals(
    run, config: Path, tmp_path: Path
):
    """The admin who means it (the organisation now works with one young person) says so, and
    the import is applied as before."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(_contacts(13))
    assert run("directory", "import", "contacts", str(contacts)).exit_code == 0
    contacts.write_text(CONTACTS)
    result = run("directory", "import", "contacts", str(contacts), "--allow-removals")
    assert result.exit_code == 0, result.output
    assert "1 added, 0 changed, 13 removed, 0 unchanged" in result.stdout
    store = _directory(config)
    emails = [c.email for c in store.contacts()]
    store.engine.dispose()
    assert emails == ["sam.minor@home.example"]


def test_leavers_are_removed_without_the_flag(run, config: Path, tmp_path: Path):
    """Leavers going is the ordinary import: one of many, or both of a directory of 2 (where
    the share alone would refuse), is applied without asking."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(_contacts(13))
    assert run("directory", "import", "contacts", str(contacts)).exit_code == 0
    contacts.write_text(_contacts(13).replace("child12@home.example", "new@home.example"))
    result = run("directory", "import", "contacts", str(contacts))
    assert result.exit_code == 0, result.output
    assert "1 added, 0 changed, 1 removed, 12 unchanged" in result.stdout
    assert "removed: child12@home.example" in result.stdout
    contacts.write_text(_contacts(2))
    assert run("directory", "import", "contacts", str(contacts), "--allow-removals").exit_code == 0
    contacts.write_text(CONTACTS)
    small = run("directory", "import", "contacts", str(contacts))
    assert small.exit_code == 0, small.output
    assert "1 added, 0 changed, 2 removed" in small.stdout


def test_a_staff_file_without_any_lead_is_refused(run, config: Path, tmp_path: Path):
    """A staff file lacking the lead's row removed every DSL: nobody could sign in to the
    safeguarding console, and the alerts lost their reader."""
    staff = tmp_path / "staff.csv"
    staff.write_text(STAFF)
    assert run("directory", "import", "staff", str(staff)).exit_code == 0
    without_lead = tmp_path / "without_lead.csv"
    without_lead.write_text(STAFF.splitlines()[0] + "\n" + STAFF.splitlines()[2] + "\n")
    result = run("directory", "import", "staff", str(without_lead))
    assert result.exit_code == 2
    assert result.stderr == (
        f"safeguard: {without_lead} has no safeguarding lead (no row with dsl = yes): "
        "dana.lee@safe.example would stop being one, and nobody could then sign in to the "
        "safeguarding console. Mark the lead dsl = yes in the file, or, if there is to be no "
        "lead for now, run the import again with --allow-removals.\n"
    )
    store = _directory(config)
    leads = [s.email for s in store.staff() if s.dsl]
    store.engine.dispose()
    assert leads == ["dana.lee@safe.example"]
    forced = run("directory", "import", "staff", str(without_lead), "--allow-removals")
    assert forced.exit_code == 0, forced.output
    assert "0 added, 0 changed, 1 removed" in forced.stdout
    assert "safeguard: warning: " in forced.stderr and "has no safeguarding lead" in forced.stderr


def test_the_first_import_into_an_empty_directory_is_never_refused(run, tmp_path: Path):
    """There is nothing to lose; a staff file with no lead yet is said, not refused."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(_contacts(13))
    first = run("directory", "import", "contacts", str(contacts))
    assert first.exit_code == 0 and "13 added" in first.stdout and first.stderr == ""
    staff = tmp_path / "staff.csv"
    staff.write_text(STAFF.replace("Dana Lee,3,2027-03-31,yes,yes", "Dana Lee,3,2027-03-31,yes,no"))
    result = run("directory", "import", "staff", str(staff))
    assert result.exit_code == 0 and "2 added" in result.stdout
    assert result.stderr == (
        f"safeguard: warning: {staff} has no safeguarding lead (no row with dsl = yes): nobody "
        "can sign in to the safeguarding console until one is imported.\n"
        # A review: alerts go to [organisation] dsl (the default pack's dsl@safe.example here),
        # not to the list's leads, and the warning had said "or read the alerts".
        "safeguard: warning: the safeguarding alerts go to dsl@safe.example ([organisation] "
        f"dsl), not a lead (dsl = yes) in {staff}: set [organisation] dsl in gateway.toml to "
        "the leads' addresses, or mark them dsl = yes\n"
    )


def _seed_demo(tmp_path: Path) -> None:
    """The demo directory, as `serve` loads it into an empty archive."""
    from gateway.directory_source import seed_demo_if_empty

    engine = open_engine(load_settings(tmp_path / "gateway.toml"))
    seed_demo_if_empty(DirectoryStore(engine), datetime.now(UTC))
    engine.dispose()


def test_the_demo_directory_goes_whole_at_the_first_real_import(run, tmp_path: Path):
    """`serve` seeds an empty archive with the demo directory; a site's own list shares none of
    its people, and replacing it is not a partial file."""
    _seed_demo(tmp_path)
    ours = tmp_path / "ours.csv"
    ours.write_text(
        "email,name,date_of_birth,category,guardian_emails,school_emails,consent\n"
        "ola.new@pupils.example,Ola New,2012-03-04,participant,mum@parents.example,,yes\n"
    )
    result = run("directory", "import", "contacts", str(ours))
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output


def test_the_demo_s_lead_is_not_one_the_site_loses(run, tmp_path: Path):
    """A review: the demo's dsl@safe.example was named as a lead the site's first staff file
    would lose, and the file refused."""
    _seed_demo(tmp_path)
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "email,name,safeguarding_level,training_expires,dbs_checked,dsl\n"
        "kim.head@ours.example,Kim Head,3,2030-01-01,yes,no\n"
    )
    result = run("directory", "import", "staff", str(staff))
    assert result.exit_code == 0, result.output
    assert "has no safeguarding lead" in result.stderr  # warned of, not refused


def test_addresses_only_reordered_are_not_people_removed(run, tmp_path: Path):
    """A review: contacts are keyed by their first address, so a file that gave each person a
    new first address read as "would remove 13 of 13"."""
    rows = [
        f"p{n}@home.example;p{n}@school.example,Person {n},2012-01-0{n},participant,,,yes"
        for n in range(1, 6)
    ]
    header = "email,name,date_of_birth,category,guardian_emails,school_emails,consent\n"
    first = tmp_path / "first.csv"
    first.write_text(header + "\n".join(rows) + "\n")
    assert run("directory", "import", "contacts", str(first)).exit_code == 0
    swapped = tmp_path / "swapped.csv"
    swapped.write_text(
        header
        + "\n".join(
            r.replace("@home.example;", "@X;")
            .replace("@school.example", "@home.example")
            .replace("@X;", "@school.example;")
            for r in rows
        )
        + "\n"
    )
    result = run("directory", "import", "contacts", str(swapped))
    assert result.exit_code == 0, result.output
    # Nor read as such in the summary and the audit log: the same people, changed.
    assert "0 added, 5 changed, 0 removed" in result.stdout
