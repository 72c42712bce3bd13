"""Write one benchmark's section into a Markdown file (the checkout's docs/benchmarks.md for the
scripts in benchmarks/, the file ``taskcodec bench --docs FILE`` names), keeping the others."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"  # this checkout's, for benchmarks/
HEAD = "# Benchmarks\n\nEvery figure below was written by the script named in its section; rerun it to refresh.\n"


def write_section(key: str, title: str, body: str, doc: Path = DOC) -> None:
    import taskcodec

    text = doc.read_text() if doc.exists() else HEAD
    stamp = f"_Measured {datetime.date.today().isoformat()}, taskcodec {taskcodec.__version__}._"
    block = f"<!-- {key}:start -->\n## {title}\n\n{stamp}\n\n{body}\n<!-- {key}:end -->"
    pattern = re.compile(rf"<!-- {key}:start -->.*?<!-- {key}:end -->", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
