"""outbox: index (status, locked_until) for the relay's in-flight count and expired leases

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 13:15:00.000000
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_lease', ['status', 'locked_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_lease')
