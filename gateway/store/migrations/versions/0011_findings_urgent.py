"""findings urgent: the review queue reads a finding's urgency from its record

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 18:30:00

The review queue put watch-list (urgent) messages first by the pack's urgent rules now, from
`archive_findings`, which did not say which findings were urgent; the record's findings did.
After a pack change that renamed or dropped an urgent rule, its messages sank among routine
flags while the console and the export still called them urgent. `archive_findings.urgent`
now holds what the record says (`gateway.policy.types.stored_finding_urgent`: risk language
for records from before findings said so), filled here for the flagged messages archived
before. Both databases: one column with a default, then an update of the urgent rows only.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BATCH = 500


def _urgent(finding: Any) -> bool:
    # stored_finding_urgent with no rules, frozen here as of this migration.
    if not isinstance(finding, dict):
        return False
    return bool(finding.get("urgent", finding.get("code") == "risk_language"))


def upgrade() -> None:
    op.add_column(
        "archive_findings",
        sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    conn = op.get_bind()
    page = sa.text(
        "SELECT id, findings FROM archive WHERE id > :after AND id IN "
        "(SELECT archive_id FROM archive_findings) ORDER BY id LIMIT :size"
    )
    mark = sa.text(
        "UPDATE archive_findings SET urgent = :yes "
        "WHERE archive_id = :archive_id AND code = :code AND rule = :rule"
    )
    after = 0
    while rows := conn.execute(page, {"after": after, "size": _BATCH}).all():
        marked = [
            {
                "yes": True,
                "archive_id": archive_id,
                "code": str(finding.get("code", ""))[:64],
                "rule": str(finding.get("rule", ""))[:128],
            }
            for archive_id, findings in rows
            for finding in _findings(findings)
            if _urgent(finding)
        ]
        if marked:
            conn.execute(mark, marked)
        after = rows[-1][0]


def _findings(value: Any) -> list[Any]:
    if isinstance(value, str):  # SQLite hands JSON back as text to a plain query
        value = json.loads(value)
    return value if isinstance(value, list) else []


def downgrade() -> None:
    with op.batch_alter_table("archive_findings") as batch:
        batch.drop_column("urgent")
