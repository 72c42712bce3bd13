"""The package's layout flows one way (issue 15): a module imports only what sits below it.

Every ``import`` in ``taskcodec/`` (function-level ones too: a lazy import is still a dependency) is
read with ``ast`` and checked against the layers below, lowest first. A module may import its own
part (``codec.*`` among themselves, say) and any part of a lower layer; nothing else. The layers:

    0  errors                          one-line errors, raised everywhere
    1  settings, imageio, progress     configuration, image files, progress callbacks
    2  domain                          task policy, vocabulary, embeddings, geometry
    3  codec                           the codec library: bitstreams, classical and learned codecs (a leaf:
                                       it imports ``errors`` and nothing else of taskcodec)
    3  store, prompts                  the SQL store; the agent's prompt templates
    4  grounding                       the encode side: what is where, mapped onto the policy's labels
    5  agents, decisions, consumers    task -> policy; detections -> decisions; the consumers of decoded
                                       output (machine tasks, reconstruction)
    6  stages, decode_routes           the stages, as plain typed functions; what a decode is turned into
    7  archive, audit, batch, bench    what the stages are used for: archives, audits, batches, measurements
    8  flows, api                      the stages composed: Prefect flows, the Python API
    9  cli                             the command line (the demo is a command)
    10 __main__, the package root      ``python -m taskcodec``; ``taskcodec.compress`` and the rest of the API

``taskcodec`` itself (``__version__``; the API, loaded lazily) may be imported from anywhere.

``KNOWN`` lists the imports that still go against this, each with the issue that removes it; the test
fails on any other, and on a known one that is gone (so the list only shrinks).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "taskcodec"

LAYERS = {
    "errors": 0, "settings": 1, "imageio": 1, "progress": 1, "domain": 2, "codec": 3, "store": 3, "prompts": 3,
    "grounding": 4, "agents": 5, "decisions": 5, "consumers": 5, "stages": 6, "decode_routes": 6,
    "archive": 7, "audit": 7, "batch": 7, "bench": 7, "flows": 8, "api": 8, "cli": 9, "__main__": 10, "": 10,
}
# A part that may import only these besides itself, whatever their layer: the codec is a leaf library.
ONLY = {"codec": {"errors"}}

# (importer's part, imported part): why it is still here. Only shrinks.
KNOWN: dict[tuple[str, str], str] = {}


def part(module: str) -> str:
    """``taskcodec.codec.av1`` -> ``codec``; ``taskcodec`` -> ``""``."""
    rest = module.split(".")[1:]
    return rest[0] if rest else ""


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        if "migrations" in f.parts:
            continue
        name = ".".join(("taskcodec", *f.relative_to(PACKAGE).with_suffix("").parts))
        out[name.removesuffix(".__init__")] = f
    return out


def imports(path: Path, name: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")[: -node.level] if not path.name == "__init__.py" else name.split(".")[: len(name.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "taskcodec":  # from taskcodec import stages: the submodule
                found.update(f"taskcodec.{a.name}" for a in node.names)
            elif mod.startswith("taskcodec"):
                found.add(mod)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("taskcodec"))
    return found


def resolve(dep: str, names) -> str:
    """``taskcodec.x.name`` (from taskcodec.x import name) -> the module ``taskcodec.x``."""
    while dep not in names and "." in dep:
        dep = dep.rsplit(".", 1)[0]
    return dep


def violations() -> dict[tuple[str, str], list[str]]:
    bad: dict[tuple[str, str], list[str]] = {}
    names = modules()
    for name, path in names.items():
        src = part(name)
        for dep in (resolve(d, names) for d in imports(path, name)):
            dst = part(dep)
            if dep == "taskcodec" or dst == src:
                continue
            assert src in LAYERS and dst in LAYERS, f"{name} or {dep}: not placed in a layer (add it to LAYERS)"
            if LAYERS[dst] >= LAYERS[src] or (src in ONLY and dst not in ONLY[src]):
                bad.setdefault((src, dst), []).append(f"{name} imports {dep}")
    return bad


def test_every_import_points_down():
    bad = violations()
    new = {k: v for k, v in bad.items() if k not in KNOWN}
    assert not new, "upward or sideways imports:\n" + "\n".join(line for v in new.values() for line in v)
    gone = set(KNOWN) - set(bad)
    assert not gone, f"fixed, so take them out of KNOWN: {sorted(gone)}"


def test_every_part_is_placed_and_the_checker_sees_imports():
    names = modules()
    assert {part(n) for n in names} <= set(LAYERS)
    assert "taskcodec.codec.api" in imports(names["taskcodec.codec.classical"], "taskcodec.codec.classical")
    assert "taskcodec.stages" in imports(names["taskcodec.batch"], "taskcodec.batch")  # from taskcodec import x


def test_no_import_cycle():
    """Between modules (a package and its own submodules aside: registering commands, lazy loaders)."""
    from graphlib import CycleError, TopologicalSorter

    names = modules()
    graph = {n: {d for d in (resolve(x, names) for x in imports(p, n))
                 if d not in (n, "taskcodec") and not d.startswith(n + ".") and not n.startswith(d + ".")}
             for n, p in names.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError("import cycle: " + " -> ".join(exc.args[1])) from None


def test_codec_registry_maps_names_to_modules(monkeypatch):
    from taskcodec import codec
    from taskcodec.errors import MissingExtraError, TaskcodecError

    monkeypatch.setattr(codec, "REGISTRY", dict(codec.REGISTRY))
    monkeypatch.setattr(codec, "CODECS", codec.CODECS)
    codec.register("mine", "taskcodec.codec.classical")
    assert codec.get_codec("mine").CODEC_ID == "classical" and "mine" in codec.CODECS
    codec.register("needs-more", "taskcodec.codec.classical", extra="someextra", needs=("no_such_module_xyz",))
    with pytest.raises(MissingExtraError, match=r"pip install 'taskcodec\[someextra\]'"):
        codec.get_codec("needs-more")
    with pytest.raises(TaskcodecError, match="unknown codec 'nope'"):
        codec.get_codec("nope")


def test_every_cli_command_that_imports_the_flows_sets_prefect_up_first():
    """The CLI configures Prefect only for ``FLOW_COMMANDS``; a command that imports ``taskcodec.flows``
    (beyond ``flows.runtime``, which imports no Prefect) must be listed there."""
    from taskcodec.cli.common import FLOW_COMMANDS

    needing = set()
    for f in (PACKAGE / "cli").glob("*.py"):
        for fn in ast.walk(ast.parse(f.read_text())):
            if not isinstance(fn, ast.FunctionDef):
                continue
            imports = {n.module for n in ast.walk(fn) if isinstance(n, ast.ImportFrom) and n.module}
            if not any(m.startswith("taskcodec.flows") and m != "taskcodec.flows.runtime" for m in imports):
                continue
            for d in fn.decorator_list:  # @app.command() / @app.command("name") / @schedule_app.command(...)
                call = d.func if isinstance(d, ast.Call) else d
                owner = ast.unparse(call).removesuffix(".command")
                if owner == "schedule_app":
                    needing.add("schedule")  # the root command a sub-app's commands run under
                elif owner == "app":
                    given = d.args[0].value if isinstance(d, ast.Call) and d.args else None
                    needing.add(given or fn.name.replace("_", "-"))
    assert {"compress", "archive", "bench", "schedule", "serve"} <= needing <= FLOW_COMMANDS, needing
