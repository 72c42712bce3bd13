"""What every ``taskcodec`` command shares: the root Typer app, the consoles, input expansion, the
one-line failure, progress bars and the report table. Command modules import this; nothing here
imports them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from taskcodec.errors import TaskcodecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Task-aware, layered image compression with an audit trail.")
# Off a terminal (a pipe, a log, CI) tables are as wide as their content: nothing is cut or wrapped.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 100_000)


def rule(title: str = "") -> None:
    """A section rule on stdout: the terminal's width, or 100 columns off a terminal (where the console is
    100,000 wide so tables are never cut, and a full-width rule would be 100,000 characters)."""
    from rich.rule import Rule

    console.print(Rule(title), width=None if sys.stdout.isatty() else 100)


def _version(value: bool) -> None:
    if value:
        import taskcodec

        print(f"taskcodec {taskcodec.__version__}")
        raise typer.Exit(0)


# The commands that may run a Prefect flow: the CLI is their entry point, so it sets Prefect's environment
# before they import it. The others (plan, ground, decode, info, why, train-codec) leave it alone.
FLOW_COMMANDS = frozenset({"compress", "archive", "bench", "demo", "schedule", "serve"})


@app.callback()
def _root(ctx: typer.Context,
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Task-aware, layered image compression with an audit trail.

    Exit codes, the same for every command: 0 all good; 1 some inputs failed (the batch went on) or a
    stream was damaged; 2 usage error (bad option, nothing was done)."""
    if ctx.invoked_subcommand in FLOW_COMMANDS:
        from taskcodec.flows.runtime import configure_prefect

        configure_prefect()


def expand_inputs(paths: list[Path], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files as given; a folder stands for the images in it (recursively), a pattern with * ? [ for its
    matches (for shells that pass it through quoted). A pattern that matches nothing stays as it is,
    so it fails as a missing file with its own name."""
    import glob

    from taskcodec.archive import IMAGE_SUFFIXES

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(q for q in sorted(p.rglob("*")) if q.is_file() and not q.name.startswith(".")
                       and q.suffix.lower() in (suffixes or IMAGE_SUFFIXES))
        elif not p.exists() and any(ch in str(p) for ch in "*?["):
            out.extend(Path(m) for m in sorted(glob.glob(str(p), recursive=True)) or [str(p)])
        else:
            out.append(p)
    return out


def _each(items, fn, key: str) -> tuple[list[dict], int]:
    """``fn`` over every item; one that fails is reported in one line and the rest go on."""
    out, failed = [], 0
    for x in items:
        try:
            out.append(fn(x))
        except (OSError, TaskcodecError) as exc:
            failed += 1
            err.print(f"[red]error:[/] {escape(str(exc))}")
            out.append({key: str(x), "error": str(exc)})
    return out, failed


def _emit(out: list[dict], as_json: bool, render) -> None:
    """All items as one JSON list, or each good one rendered for people."""
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for item in out:
        if "error" not in item:
            render(item)


def _fail(exc: Exception, code: int = 2) -> None:
    from taskcodec.errors import StoreError

    if isinstance(exc, StoreError):  # the environment, not the command line, is at fault
        code = 1
    err.print(f"[red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code)


def _progress(total: int | None, what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from taskcodec.progress import set_listener

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                   transient=True)
    tid = bar.add_task(what, total=total)
    set_listener(lambda _path, _ok: bar.advance(tid))
    return bar


def print_reports(reports) -> int:
    t = Table("image", "status", "bytes", "bpp", "layers", "sent", "dropped", "seconds", "bitstream / error")
    for r in reports:
        if r.ok:
            t.add_row(escape(Path(r.path).name), "[green]ok[/]", f"{r.bytes:,}", f"{r.bpp:.4f}", str(r.layers),
                      str(r.transmitted), str(r.dropped), f"{r.seconds:.2f}", r.bitstream)
        else:
            t.add_row(escape(Path(r.path).name), "[red]failed[/]", "", "", "", "", "", f"{r.seconds:.2f}",
                      escape(r.error or ""))
    console.print(t)
    failed = sum(not r.ok for r in reports)
    console.print(f"{len(reports) - failed} encoded, {failed} failed")
    return failed
