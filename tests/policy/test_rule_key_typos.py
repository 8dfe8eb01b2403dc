"""A misspelt or missing key in a rule is reported once, with the key it was likely meant to be:
not as "unknown key 'chek'" followed by a second, confusing "unknown check None"."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy.pack import PackError, load_pack

HEAD = '[pack]\nname = "typos"\n[organisation]\ndomains = ["x.example"]\n'


def _problems(tmp_path: Path, rule: str) -> list[str]:
    path = tmp_path / "typos.toml"
    path.write_text(f'{HEAD}[[rule]]\nid = "r1"\n{rule}')
    with pytest.raises(PackError) as refused:
        load_pack(str(path))
    return refused.value.problems


def test_a_misspelt_check_key_says_did_you_mean_check_and_nothing_about_check_none(tmp_path):
    """A review: `chek = "..."` said "unknown key 'chek'" with no hint, then "unknown check
    None" about the key it could not find."""
    problems = _problems(
        tmp_path,
        'chek = "informal_sign_off"\naction = "flag"\npolicy = "Signed off formally."\n',
    )
    assert problems == [
        f"{tmp_path / 'typos.toml'}:7: rule 'r1': unknown key 'chek' (did you mean 'check'?)"
    ]


def test_misspelt_action_and_policy_keys_are_each_reported_once_as_the_typo(tmp_path):
    problems = _problems(
        tmp_path, 'check = "informal_sign_off"\nacton = "flag"\npolicyy = "Signed off."\n'
    )
    assert [p.split(": ", 1)[1] for p in problems] == [
        "rule 'r1': unknown key 'acton' (did you mean 'action'?)",
        "rule 'r1': unknown key 'policyy' (did you mean 'policy'?)",
    ]


def test_a_missing_check_key_is_said_to_be_missing_once_listing_the_checks(tmp_path):
    [problem] = _problems(tmp_path, 'action = "flag"\npolicy = "Signed off formally."\n')
    assert ": rule 'r1': missing key 'check' (known checks: " in problem
    assert "informal_sign_off" in problem and "None" not in problem


def test_a_misspelt_key_beside_a_wrong_check_still_reports_the_wrong_check(tmp_path):
    """`checks` is a typo for `check`, but `check` is there: its own error stands."""
    problems = _problems(tmp_path, 'check = "nope"\nchecks = "x"\naction = "flag"\npolicy = "P."\n')
    assert any("unknown key 'checks' (did you mean 'check'?)" in p for p in problems)
    assert any("unknown check 'nope' (known: " in p for p in problems)


def test_an_unknown_key_nothing_is_close_to_lists_the_known_keys(tmp_path):
    [problem] = _problems(
        tmp_path, 'check = "informal_sign_off"\naction = "flag"\npolicy = "P."\nzzz = 1\n'
    )
    assert "unknown key 'zzz' (known: action, check, id, " in problem


def test_a_misspelt_check_name_gets_a_suggestion(tmp_path):
    """A reviewer's `check = "out_of_hour"` was told only the list of checks."""
    path = tmp_path / "p.toml"
    path.write_text(
        '[pack]\nname = "p"\n[organisation]\ndomains = ["school.example"]\n'
        '[[rule]]\nid = "hours"\ncheck = "out_of_hour"\naction = "flag"\n'
        'policy = "Not after hours."\n'
    )
    with pytest.raises(
        PackError, match=r"unknown check 'out_of_hour' \(did you mean 'out_of_hours'\?\)"
    ):
        load_pack(str(path))
