"""schedule kinds: an interval instead of a cron, a timezone, and a paused flag

(revision 0006 after 0005, 2026-12-03)"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision, down_revision = '0006', '0005'


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
