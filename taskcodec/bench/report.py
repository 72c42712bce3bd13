"""Write one benchmark's section into docs/benchmarks.md, keeping the others."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

DOC = Path.cwd() / "docs" / "benchmarks.md"  # the checkout the command is run from
HEAD = "# Benchmarks\n\nEvery figure below was written by the script named in its section; rerun it to refresh.\n"


def write_section(key: str, title: str, body: str) -> None:
    import taskcodec

    text = DOC.read_text() if DOC.exists() else HEAD
    stamp = f"_Measured {datetime.date.today().isoformat()}, taskcodec {taskcodec.__version__}._"
    block = f"<!-- {key}:start -->\n## {title}\n\n{stamp}\n\n{body}\n<!-- {key}:end -->"
    pattern = re.compile(rf"<!-- {key}:start -->.*?<!-- {key}:end -->", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
