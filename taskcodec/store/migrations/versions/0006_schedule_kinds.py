"""schedule kinds: an interval instead of a cron, a timezone, and a paused flag

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 16:00:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.alter_column('cron', existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        batch_op.add_column(sa.Column('interval_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('paused', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_column('paused')
        batch_op.drop_column('timezone')
        batch_op.drop_column('interval_s')
        batch_op.alter_column('cron', existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
