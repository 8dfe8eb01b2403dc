"""`safeguard rules lint [PACK]` and `safeguard rules show PACK`."""

from __future__ import annotations

import sys
import textwrap

import click

from gateway.cli import Context, pass_context
from gateway.notify.render import environment_for, template_problems
from gateway.policy.pack import NoSuchPack, PackError, available_packs, load_pack


@click.group()
def rules() -> None:
    """Policy packs: validate them, and read them for sign-off."""


@rules.command()
@click.argument("pack", required=False)
@pass_context
def lint(ctx: Context, pack: str | None) -> None:
    """Validate PACK (default: every pack in rules/) and the notice templates."""
    names = [pack] if pack else available_packs()
    failed = False
    for name in names:
        try:
            loaded = load_pack(name)
        except NoSuchPack as exc:  # bad usage (2), not a pack with problems (1)
            click.echo(f"safeguard: {exc}", err=True)
            sys.exit(2)
        except PackError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(problem, err=True)
            continue
        env = environment_for(name, ctx.settings.templates)
        problems = template_problems(env, {r.check for r in loaded.rules})
        for problem in problems:
            click.echo(f"{loaded.path}: {problem}", err=True)
        failed = failed or bool(problems)
        if not problems:
            click.echo(f"{loaded.path}: ok ({len(loaded.rules)} rules)")
    sys.exit(1 if failed else 0)


@rules.command()
@click.argument("pack")
@pass_context
def show(ctx: Context, pack: str) -> None:
    """Print PACK's rules, each with the policy sentence it enforces, for sign-off."""
    try:
        loaded = load_pack(pack)
    except PackError as exc:
        click.echo(f"safeguard: {exc}", err=True)
        sys.exit(2)
    org = loaded.organisation
    click.echo(f"{loaded.title} ({loaded.name})" + (f", from {loaded.seed}" if loaded.seed else ""))
    if loaded.summary:
        click.echo(textwrap.fill(loaded.summary, 96))
    click.echo(
        f"\nOffice hours: {org.office_hours.text}, closed on {org.bank_holidays or 'no'} "
        f"bank holidays ({org.timezone.key}). Safeguarding lead: {', '.join(org.dsl) or '-'}"
    )
    for number, rule in enumerate(loaded.rules, start=1):
        scope = "young people" if rule.where.minors_only else "everyone"
        if rule.where.categories:
            scope += f" ({', '.join(rule.where.categories)})"
        urgent = ", alerts the safeguarding lead at once" if rule.urgent else ""
        click.echo(
            f"\n{number}. {rule.id}: {rule.action.value} on {rule.check} for {scope}{urgent}"
        )
        click.echo(
            textwrap.fill(f"“{rule.policy}”", 96, initial_indent="   ", subsequent_indent="   ")
        )
        if rule.section:
            click.echo(f"   ({rule.section})")
        if rule.reading:
            click.echo(
                textwrap.fill(
                    f"Reading: {rule.reading}", 96, initial_indent="   ", subsequent_indent="   "
                )
            )
