import subprocess
import sys
import textwrap

from sqlalchemy import inspect, text
from sqlmodel import select

from taskcodec import stages
from taskcodec.settings import Settings
from taskcodec.store import models as m
from taskcodec.store.db import get_engine, session

TABLES = {"tasks", "policies", "images", "encodings", "layers", "decisions", "runs", "agent_steps", "decodes", "schedules", "alembic_version"}


def test_migrations_create_every_table_in_wal_mode(home):
    eng = get_engine()
    assert TABLES <= set(inspect(eng).get_table_names())
    with eng.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"


def test_the_migrations_build_exactly_the_tables_the_models_declare(home):
    """The models and the migrations are the schema said twice (Alembic's way); this keeps them one."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with get_engine().connect() as c:
        assert compare_metadata(MigrationContext.configure(c), SQLModel.metadata) == []


def test_an_up_to_date_store_opens_without_alembic(home):
    from alembic.script import ScriptDirectory

    from taskcodec.store.db import alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    get_engine()  # migrates the new store
    code = "import sys; from taskcodec.store.db import get_engine; get_engine(); print('alembic' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr[-2000:]


def test_policy_is_cached_and_refresh_makes_a_new_version(home):
    a = stages.plan_task("count cars and people")
    b = stages.plan_task("Count cars  and people.")
    assert (a.policy_id, a.version) == (b.policy_id, 1)
    c = stages.plan_task("count cars and people", refresh=True)
    assert c.version == 2 and c.policy_id != a.policy_id
    assert stages.plan_task("count cars and people").policy_id == c.policy_id  # newest wins
    with session() as s:
        rows = s.exec(select(m.Policy).order_by(m.Policy.id)).all()
        assert [r.version for r in rows] == [1, 2]
        assert rows[0].body["labels"] == rows[1].body["labels"]  # v1 untouched


def _compress_rows(astronaut, out, run_id=None):
    policy = stages.plan_task("privacy audit: keep people and faces sharp")
    image = stages.load(astronaut)
    g = stages.ground_image(image, policy, "opencv")
    enc = stages.encode_image(image, stages.decide_objects(g, policy), policy)
    return stages.persist(image, policy, enc, out, g.backend, run_id), enc


def test_persist_writes_every_decision_and_layer(home, astronaut, tmp_path):
    enc_id, enc = _compress_rows(astronaut, tmp_path / "a.tcb")
    assert (tmp_path / "a.tcb").read_bytes() == enc.data
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with session() as s:
        row = s.get(m.Encoding, enc_id)
        assert row.bytes == len(enc.data) and row.uid == enc.header.encoding_uid
        decisions = s.exec(select(m.Decision).where(m.Decision.encoding_id == enc_id)).all()
        layers = s.exec(select(m.Layer).where(m.Layer.encoding_id == enc_id)).all()
    assert len(decisions) == len(enc.decisions) and all(d.sentence for d in decisions)
    assert sum(l.bytes for l in layers) < row.bytes and [l.index for l in layers] == list(range(len(layers)))


CONCURRENT = textwrap.dedent("""
    import sys
    from taskcodec import stages
    img, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    policy = stages.plan_task("privacy audit: keep people and faces sharp")
    for i in range(n):
        image = stages.load(img)
        g = stages.ground_image(image, policy, "opencv")
        enc = stages.encode_image(image, stages.decide_objects(g, policy), policy)
        stages.persist(image, policy, enc, f"{out}-{i}.tcb", g.backend)
""")


def test_concurrent_processes_on_one_sqlite_store_lose_nothing(home, astronaut, tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(astronaut), str(tmp_path / f"p{k}"), "4"],
                              stderr=subprocess.PIPE) for k in range(3)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    with session() as s:
        assert len(s.exec(select(m.Encoding)).all()) == 12
        assert len(s.exec(select(m.Policy)).all()) == 1  # the race to plan the task stored one version
        assert len(s.exec(select(m.Image)).all()) == 1
        n_dec = len(s.exec(select(m.Decision)).all())
    assert n_dec == 12 * 4  # base + person + face + license plate (not detected), for each encoding


def test_postgresql_store(tmp_path, astronaut):
    from tests.pg import postgres_server

    with postgres_server() as url:
        s = Settings(database_url=url, home=tmp_path / "h")
        eng = get_engine(s)
        assert eng.dialect.name == "postgresql"
        assert TABLES <= set(inspect(eng).get_table_names())
        p = stages.plan_task("count cars and people", settings=s)
        assert stages.plan_task("count cars and people", settings=s).policy_id == p.policy_id
        image = stages.load(astronaut)
        g = stages.ground_image(image, p, "opencv")
        enc = stages.encode_image(image, stages.decide_objects(g, p), p)
        enc_id = stages.persist(image, p, enc, tmp_path / "a.tcb", g.backend, settings=s)
        with session(s) as db:
            assert db.get(m.Encoding, enc_id).bytes == len(enc.data)
            assert len(db.exec(select(m.Decision)).all()) == len(enc.decisions)
        eng.dispose()
