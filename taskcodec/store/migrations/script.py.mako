"""${message} (revision ${up_revision} after ${down_revision | comma,n}, ${create_date})"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
${imports if imports else ""}

# head_revision() (store/db.py) reads this line without importing Alembic: keep its form
revision, down_revision = ${repr(up_revision)}, ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
