"""Per-list entry counts of each hotlist version (``hotlists``), so that listing versions reads no entries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:20:00

"""

from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column and count the lists of every stored version, one version's entries at a time."""
    with op.batch_alter_table("hotlist_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hotlists", sa.JSON(), nullable=True))

    versions = sa.table(
        "hotlist_versions",
        sa.column("version", sa.Integer()),
        sa.column("entries", sa.JSON()),
        sa.column("hotlists", sa.JSON()),
    )
    connection = op.get_bind()
    for number in connection.scalars(sa.select(versions.c.version).order_by(versions.c.version)).all():
        entries = connection.scalar(sa.select(versions.c.entries).where(versions.c.version == number))
        counts = Counter(entry["hotlist"] for entry in (entries or {}).get("entries", []))
        hotlists = dict(sorted(counts.items()))
        connection.execute(versions.update().where(versions.c.version == number).values(hotlists=hotlists))

    with op.batch_alter_table("hotlist_versions", schema=None) as batch_op:
        batch_op.alter_column("hotlists", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("hotlist_versions", schema=None) as batch_op:
        batch_op.drop_column("hotlists")
