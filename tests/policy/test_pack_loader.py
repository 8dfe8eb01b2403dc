"""A broken pack is refused at start-up with the file, line, rule id and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, OrganisationSettings, load_settings
from gateway.policy.pack import PackError, load_pack
from gateway.policy.types import Action

GOOD = """\
[pack]
name = "test"
title = "Test Trust"

[organisation]
domains = ["test.example"]
office_hours = "Mon-Fri 09:00-17:00"
mailboxes = { work_experience = "we@test.example" }

[[rule]]
id = "copy-guardian"
check = "missing_required_cc"
action = "reject"
policy = "Parents must be copied."
[rule.settings]
any_of = ["guardian"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test.toml"
    path.write_text(text)
    return path


def test_a_good_pack_loads_with_its_rules_and_sentences(tmp_path):
    pack = load_pack(str(write(tmp_path, GOOD)))
    [rule] = pack.rules
    assert (rule.id, rule.check, rule.action, rule.policy) == (
        "copy-guardian",
        "missing_required_cc",
        Action.REJECT,
        "Parents must be copied.",
    )
    assert rule.line == 10


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('check = "missing_required_cc"', 'check = "missing_cc"'),
            ":12: rule 'copy-guardian': unknown check 'missing_cc'",
        ),
        (
            ('action = "reject"', 'action = "block"'),
            ":13: rule 'copy-guardian': action 'block' must be one of",
        ),
        (
            ('policy = "Parents must be copied."\n', ""),
            ":10: rule 'copy-guardian': every rule quotes the policy sentence",
        ),
        (
            ('any_of = ["guardian"]', 'any_of = ["uncle"]'),
            ":15: rule 'copy-guardian': settings: unknown role 'uncle'",
        ),
        (
            ('any_of = ["guardian"]', 'anyof = ["guardian"]'),
            ":15: rule 'copy-guardian': settings: unknown setting(s) anyof (did you mean any_of?);"
            " known: any_of, fallback, min_level",
        ),
        (
            ('office_hours = "Mon-Fri 09:00-17:00"', 'office_hours = "Mon-Fri 9am-5pm"'),
            ":7: [organisation] office_hours: 'Mon-Fri 9am-5pm' is not like",
        ),
        (
            ('office_hours = "Mon-Fri 09:00-17:00"', 'office_hours = "Mon-Fri 17:00-09:00"'),
            ":7: [organisation] office_hours: 'Mon-Fri 17:00-09:00': the end must be after",
        ),
        (
            ('id = "copy-guardian"', 'id = "Copy Guardian"'),
            ":11: id 'Copy Guardian' must be kebab-case",
        ),
    ],
)
def test_a_broken_pack_names_file_line_rule_and_reason(tmp_path, change, expected):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(PackError) as error:
        load_pack(str(path))
    assert f"{path}{expected}" in str(error.value)


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    text = GOOD.replace('action = "reject"', 'action = "block"').replace(
        'check = "missing_required_cc"', 'check = "nope"'
    )
    with pytest.raises(PackError) as error:
        load_pack(str(write(tmp_path, text)))
    assert len(error.value.problems) == 2


def test_a_mailbox_the_organisation_does_not_define_is_refused(tmp_path):
    text = (
        GOOD
        + """
[[rule]]
id = "enquiries-from-mailbox"
check = "sender_not_permitted"
action = "reject"
policy = "Enquiries go through the placements mailbox."
[rule.settings]
mailbox = "placements"
"""
    )
    with pytest.raises(PackError, match="mailbox 'placements' is not in"):
        load_pack(str(write(tmp_path, text)))


def test_invalid_toml_is_reported_with_its_position(tmp_path):
    with pytest.raises(PackError, match=r"not valid TOML: .*line 2"):
        load_pack(str(write(tmp_path, "[pack]\nname = \n")))


def test_an_unknown_pack_name_lists_the_packs_there_are(tmp_path):
    with pytest.raises(PackError, match=r"no such policy pack .*available: .*teens-in-ai"):
        load_pack("no-such-pack")


def test_the_sites_organisation_settings_win_over_the_packs(tmp_path):
    site = OrganisationSettings(
        domains=("school.example",),
        overrides={"office_hours": "Mon-Fri 08:00-16:00", "dsl": ["d@school.example"]},
    )
    pack = load_pack(str(write(tmp_path, GOOD)), site=site)
    assert pack.organisation.domains == ("school.example",)
    assert pack.organisation.office_hours.text == "Mon-Fri 08:00-16:00"
    assert pack.organisation.dsl == ("d@school.example",)


@pytest.mark.parametrize(
    ("site_line", "expected"),
    [
        ('office_hours = "Mon-Fri 25:00-17:00"', "[organisation] office_hours: '25:00'"),
        ('timezone = "Europe/Londres"', "unknown time zone 'Europe/Londres'"),
        ('dsl = "lead@school.example"', "[organisation] dsl has the wrong shape"),
        # The holidays library takes "UK" and gives only what the four nations share: an
        # English school would then be "open" on Easter Monday.
        (
            'bank_holidays = "UK"',
            "[organisation] bank_holidays: bank-holiday region 'UK' names no nation, and would"
            " close only on the days all four share: use GB-ENG (England), GB-WLS (Wales),"
            " GB-SCT (Scotland) or GB-NIR (Northern Ireland)",
        ),
        ('bank_holidays = "GB-XYZ"', "[organisation] bank_holidays: unknown bank-holiday region"),
        ('bank_holidays = "England"', "in the UK use GB-ENG (England), GB-WLS (Wales)"),
        ('bank_holidays = "GBR"', "bank-holiday region 'GBR' names no nation"),
    ],
)
def test_a_bad_site_value_is_reported_in_gateway_toml_not_in_the_pack(
    tmp_path, site_line, expected
):
    """Errors name the file and line where the value was set: an admin who wrote it in
    gateway.toml is not sent to the pack whose default it replaced."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n\n'
        f'[organisation]\ndomains = ["school.example"]\n{site_line}\n'
    )
    pack = write(tmp_path, GOOD)
    with pytest.raises((PackError, ConfigError)) as caught:
        settings = load_settings(config)
        load_pack(str(pack), site=settings.organisation)
    message = str(caught.value)
    assert f"{config}:6: " in message
    assert expected in message
    assert str(pack) not in message


def test_a_bad_value_in_the_pack_is_still_reported_in_the_pack(tmp_path):
    site = OrganisationSettings(domains=("school.example",), source=tmp_path / "gateway.toml")
    text = GOOD.replace('"Mon-Fri 09:00-17:00"', '"Mon-Fri 25:00-17:00"')
    pack = write(tmp_path, text)
    with pytest.raises(PackError, match=rf"{pack}:7: \[organisation\] office_hours: '25:00'"):
        load_pack(str(pack), site=site)


def test_a_bad_site_value_from_no_file_still_says_the_site_set_it(tmp_path):
    site = OrganisationSettings(domains=("school.example",), overrides={"dsl": "d@school.example"})
    with pytest.raises(PackError, match=r"dsl has the wrong shape.*set by the site's"):
        load_pack(str(write(tmp_path, GOOD)), site=site)


def test_serve_warns_while_urgent_alerts_would_go_to_the_default_pack_s_placeholder():
    """A gateway.toml that sets its domains but not `dsl` keeps the default pack's
    dsl@safe.example (the demo directory's lead): the lead would never see an alert. `serve`
    logs it at start."""
    from gateway.policy.evaluate import Policy
    from gateway.service import alert_warnings

    site = OrganisationSettings(domains=("school.example",))
    [(event, fields)] = alert_warnings(Policy(load_pack("default", site=site)))
    assert event == "alerts_go_outside_your_domains"
    assert fields["dsl"] == ["dsl@safe.example"]
    ours = OrganisationSettings(
        domains=("school.example",), overrides={"dsl": ["dsl@school.example"]}
    )
    assert alert_warnings(Policy(load_pack("default", site=ours))) == []
    nobody = OrganisationSettings(domains=("school.example",), overrides={"dsl": []})
    [(event, _)] = alert_warnings(Policy(load_pack("default", site=nobody)))
    assert event == "alerts_have_no_dsl"


def test_a_relay_nobody_can_send_through_is_warned_of_at_start(tmp_path):
    """A review: with no trusted network and no TLS, AUTH is never offered and every message
    gets 530, while the log said nothing wrong."""
    from gateway.config import load_settings
    from gateway.service import relay_warnings

    closed = tmp_path / "closed.toml"
    closed.write_text("[auth]\ntrusted_networks = []\n")
    [(event, fields)] = relay_warnings(load_settings(closed))
    assert event == "nobody_can_send" and "tls_cert" in str(fields["fix"])
    lan = tmp_path / "lan.toml"
    lan.write_text('[auth]\ntrusted_networks = ["10.0.0.0/8"]\n')
    assert relay_warnings(load_settings(lan)) == []


def test_an_upstream_signed_in_to_as_a_mailbox_is_warned_of_at_start(tmp_path):
    """An admin's review: with Microsoft 365 over SMTP AUTH every alert and bounce (sent from
    <>) was refused, and nothing at start said it might be."""
    from gateway.config import load_settings
    from gateway.service import relay_warnings

    m365 = tmp_path / "m365.toml"
    m365.write_text(
        '[upstream]\nurl = "smtp+starttls://relay%40school.example:secret@smtp.office365.com:587"\n'
    )
    [(event, fields)] = relay_warnings(load_settings(m365))
    assert event == "notices_may_not_be_delivered" and "deploy/README.md" in str(fields["fix"])
    connector = tmp_path / "connector.toml"
    connector.write_text('[upstream]\nurl = "smtp://school-example.mail.protection.outlook.com"\n')
    assert relay_warnings(load_settings(connector)) == []
