"""An organisation's own wording wins over the built-in notices, file by file."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from gateway.notify.policy import policy_bounce
from gateway.notify.render import environment_for
from tests.policy.harness import Draft, evaluate, pipeline


def test_a_site_template_replaces_the_built_in_one_and_the_rest_stay(tmp_path: Path):
    site = tmp_path / "templates"
    (site / "notices").mkdir(parents=True)
    (site / "notices" / "policy_bounce.txt.j2").write_text(
        "Dear colleague, please speak to {{ org.dsl | join(', ') }} before resending.\n"
        "{% for e in blocking %}* {{ e.correction }}\n{% endfor %}"
    )
    env = environment_for("teens-in-ai", site)
    result = evaluate(
        "teens-in-ai", Draft(to=("sam.minor@home.example",), cc=("lee.mentor@teensinai.example",))
    )
    p = pipeline("teens-in-ai")
    report = message_from_bytes(
        policy_bounce(
            env,
            hostname="gw",
            raw=result.raw,
            message=result.message,
            explained=result.explained,
            org=p.organisation,
            sent=result.at,
        ),
        policy=policy.default,
    )
    text = next(x for x in report.walk() if x.get_content_type() == "text/plain").get_content()
    html = next(x for x in report.walk() if x.get_content_type() == "text/html").get_content()
    assert text.startswith("Dear colleague, please speak to safeguarding@teensinai.example")
    assert "priya.shah@parents.example" in text
    assert "Your message was not sent" in html  # not overridden: the built-in remains


def test_a_site_templates_folder_that_does_not_exist_is_a_config_error(tmp_path: Path):
    import pytest

    from gateway.config import ConfigError, load_settings

    config = tmp_path / "gateway.toml"
    config.write_text('[notify]\ntemplates = "nope"\n')
    with pytest.raises(ConfigError, match=r"gateway.toml:2: \[notify\] templates: folder 'nope'"):
        load_settings(config)
