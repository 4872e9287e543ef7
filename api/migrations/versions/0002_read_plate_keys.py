"""Fuzzy-search keys of reads (``read_plate_keys``), filled in for the reads already stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 05:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from stream.matching import search_keys

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_READS_PER_BATCH = 5000


def upgrade() -> None:
    """Create the keys table and store the keys of every read already stored, a batch at a time."""
    keys = op.create_table(
        "read_plate_keys",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(["seq"], ["reads.seq"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq", "key"),
    )
    with op.batch_alter_table("read_plate_keys", schema=None) as batch_op:
        batch_op.create_index("ix_read_plate_keys_key_seq", ["key", "seq"], unique=False)

    reads = sa.table("reads", sa.column("seq", sa.BigInteger()), sa.column("plate", sa.String(10)))
    connection = op.get_bind()
    after = -1
    while True:
        batch = connection.execute(
            sa.select(reads.c.seq, reads.c.plate)
            .where(reads.c.seq > after)
            .order_by(reads.c.seq)
            .limit(_READS_PER_BATCH)
        ).all()
        if not batch:
            break
        connection.execute(
            keys.insert(), [{"seq": seq, "key": key} for seq, plate in batch for key in search_keys(plate)]
        )
        after = batch[-1].seq


def downgrade() -> None:
    """Drop the keys table."""
    with op.batch_alter_table("read_plate_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_read_plate_keys_key_seq")

    op.drop_table("read_plate_keys")
