from taskcodec.store.db import get_engine, session  # noqa: F401
