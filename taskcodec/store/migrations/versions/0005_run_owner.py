"""run owner: the pid and host that run a flow, so a run that died can be marked failed

(revision 0005 after 0004, 2026-12-03)"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision, down_revision = '0005', '0004'


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('owner_host', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('owner_host')
        batch_op.drop_column('owner_pid')
