"""What a user meets on the way out: formats by extension, umask, no silent overwrite, exit codes,
damaged streams, info, --version, markup-safe text and tables that are never cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from taskcodec import stages
from taskcodec.cli import app
from taskcodec.errors import OutputExistsError
from taskcodec.imageio import atomic_write_bytes
from tests.conftest import make_tcb

runner = CliRunner()
TASK = "privacy audit: keep people and faces sharp"


def cli(*args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, (r.exit_code, r.output)
    return r


@pytest.fixture
def tcb(home, astronaut, tmp_path):
    return make_tcb(astronaut, TASK, tmp_path / "a.tcb", quality=30)


def test_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644  # was 0600 from the temp-file step
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o600


def test_bitstreams_are_not_overwritten_silently(home, astronaut, tmp_path):
    out = make_tcb(astronaut, TASK, tmp_path / "a.tcb")
    before = out.read_bytes()
    policy = stages.plan_task(TASK)
    img = stages.load(astronaut)
    enc = stages.encode_grounded(img, stages.ground_image(img, policy), policy, quality=80)
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        stages.persist(img, policy, enc, out, "yolox")
    assert out.read_bytes() == before and not list(tmp_path.glob(".a.tcb.*"))
    stages.persist(img, policy, enc, out, "yolox", overwrite=True)
    assert out.read_bytes() == enc.data


@pytest.mark.parametrize("ext,magic", [(".png", b"\x89PNG"), (".jpg", b"\xff\xd8"), (".webp", b"RIFF"),
                                       (".npy", b"\x93NUMPY")])
def test_decoded_image_format_follows_the_extension(tcb, tmp_path, ext, magic):
    out = tmp_path / f"x{ext}"
    cli("decode", tcb, "--for", "human", "--out", out)
    assert out.read_bytes()[: len(magic)] == magic
    pixels = np.load(out) if ext == ".npy" else np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape == (512, 512, 3)


def test_unknown_extension_is_refused_before_any_work(tcb, tmp_path):
    r = cli("decode", tcb, "--for", "human", "--out", tmp_path / "x.bmpx", code=2)
    assert "unknown image extension '.bmpx'" in r.output and not list(tmp_path.glob("x.bmpx*"))
    r = cli("decode", tcb, "--for", "machine", "--out", tmp_path / "x.png", code=2)
    assert "ending in .json" in r.output


def test_decode_never_replaces_an_output_unless_asked_and_each_decode_keeps_its_record(tcb, tmp_path):
    cli("decode", tcb, "--for", "human", "--out", tmp_path / "a.png")
    human_png = (tmp_path / "a.png").read_bytes()
    r = cli("decode", tcb, "--for", "human", "--layers", "base", "--out", tmp_path / "a.png", code=1)
    assert "already exists; pass --overwrite" in r.output and (tmp_path / "a.png").read_bytes() == human_png
    cli("decode", tcb, "--for", "machine", "--out", tmp_path / "a.json")  # its image is a.json.png
    assert (tmp_path / "a.png").read_bytes() == human_png and (tmp_path / "a.json.png").is_file()
    audit = json.loads(cli("why", tcb, "--json").stdout)[0]
    outputs = {d["route"]: d["output"] for d in audit["decodes"]}
    assert outputs == {"human:classical": str((tmp_path / "a.png").resolve()),
                       "machine": str((tmp_path / "a.json").resolve())}
    cli("decode", tcb, "--for", "human", "--layers", "base", "--out", tmp_path / "a.png", "--overwrite")
    assert (tmp_path / "a.png").read_bytes() != human_png


def test_layers_beyond_the_file_say_so(tcb, tmp_path):
    r = cli("decode", tcb, "--for", "machine", "--layers", "99", "--out", tmp_path / "m.json")
    n = sum(1 for o in json.loads((tmp_path / "m.json").read_text())["objects"])
    assert f"--layers 99 asks for more object layers than {tcb} has ({n})" in " ".join(r.output.split())


def _damage(tcb, tmp_path, layer: int):
    """A copy of ``tcb`` with one byte of ``layer``'s payload flipped (CRC no longer matches)."""
    from taskcodec.codec import bitstream

    data = bytearray(tcb.read_bytes())
    _, offset = bitstream.parse_header(bytes(data))
    header = bitstream.read(tcb).header
    offset += sum(e.length for e in header.layers[:layer])
    data[offset + header.layers[layer].length // 2] ^= 0xFF
    out = tmp_path / f"damaged-{layer}.tcb"
    out.write_bytes(bytes(data))
    return out


def test_a_damaged_stream_fails_unless_best_effort_and_no_layer_always_fails(tcb, tmp_path):
    bad = _damage(tcb, tmp_path, 1)
    r = cli("decode", bad, "--for", "human", "--out", tmp_path / "x.png", code=1)
    assert "CRC mismatch" in r.output and "--best-effort" in r.output and not (tmp_path / "x.png").exists()
    cli("decode", bad, "--for", "human", "--best-effort", "--out", tmp_path / "x.png")
    worst = _damage(tcb, tmp_path, 0)
    r = cli("decode", worst, "--for", "human", "--best-effort", "--out", tmp_path / "y.png", code=1)
    assert "no layer is intact" in r.output and not (tmp_path / "y.png").exists()
    info = json.loads(cli("info", worst, "--json").stdout)[0]
    assert [l["intact"] for l in info["layers"]][:2] == [False, False] and info["problems"]


def test_info_names_labels_from_the_store_that_wrote_the_stream(tcb):
    body = json.loads(cli("info", tcb, "--json").stdout)[0]
    objects = [l for l in body["layers"] if l["kind"] == "object"]
    assert [l["label"] for l in objects] == ["person", "face"] and body["task"] == TASK
    out = cli("info", tcb).output
    assert "of the policy's labels" not in out and "person" in out and "quality" not in out  # v2: no qualities


def test_info_reads_a_stream_without_the_store(tcb, tmp_path, monkeypatch):
    from taskcodec.settings import get_settings

    monkeypatch.setenv("TASKCODEC_HOME", str(tmp_path / "elsewhere"))  # no store at all
    get_settings.cache_clear()
    body = json.loads(cli("info", tcb.parent, "--json").stdout)  # a folder: its .tcb files
    assert len(body) == 1 and body[0]["version"] == "2.0" and body[0]["codec"] == "classical"
    layers = body[0]["layers"]
    assert layers[0]["kind"] == "base" and sum(l["length"] for l in layers) + body[0]["header_bytes"] == body[0]["bytes"]
    assert body[0]["non_payload_share"] == round(body[0]["header_bytes"] / body[0]["bytes"], 4)
    objects = [l for l in layers if l["kind"] == "object"]
    assert objects and all(l["label"] is None and l["label_index"] is not None for l in objects)  # names: the store
    out = cli("info", tcb).output
    assert "layer" in out and "of the policy's labels" in out
    assert not (tmp_path / "elsewhere").exists()  # looking inside a file creates no store


def test_version_and_markup_in_user_text(home, astronaut, tmp_path):
    import taskcodec

    assert cli("--version").output.strip() == f"taskcodec {taskcodec.__version__}"
    r = runner.invoke(app, ["plan", "[/] people [bold]"])
    assert r.exit_code in (0, 2) and "Traceback" not in r.output and "MarkupError" not in r.output
    odd = tmp_path / "a[bold]b[red].png"  # markup-like and glob-like, but a real file
    odd.write_bytes(astronaut.read_bytes())
    r = cli("ground", "--labels", "person", odd)
    assert "a[bold]b[red].png" in r.output


def test_tables_are_never_cut_off_a_terminal(tcb, tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "file.tcb"
    deep.parent.mkdir()
    deep.write_bytes(tcb.read_bytes())
    env = {**os.environ, "COLUMNS": "80"}
    r = subprocess.run([sys.executable, "-m", "taskcodec", "why", str(tcb)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout and any(len(line) > 80 for line in r.stdout.splitlines())


def test_audit_page_shows_the_decoded_picture_and_mask_even_once_the_original_is_gone(home, astronaut, tmp_path):
    original = tmp_path / "<i>odd & named.png"
    original.write_bytes(astronaut.read_bytes())
    tcb = make_tcb(original, TASK, tmp_path / "odd.tcb", quality=30)
    cli("why", tcb, "--html", tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 2 and "data:image/png;base64," in page  # decoded, original; mask
    assert "&lt;i&gt;odd &amp; named.png" in page and "<i>odd" not in page  # escaped by jinja2
    assert "<rect" in page and "#1a9850" in page  # boxes coloured by decision
    original.unlink()
    cli("why", tcb, "--html", tmp_path / "page.html", code=1)  # exists: not replaced without --overwrite
    cli("why", tcb, "--html", tmp_path / "page.html", "--overwrite")
    page = (tmp_path / "page.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 1 and "original no longer at" in page


def test_json_reports_and_folder_inputs_for_batch_commands(prefect_server, home, sample_dir, bad_images, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut.png", "coffee.png"):
        (photos / name).write_bytes((sample_dir / name).read_bytes())
    (photos / "notes.jpg").write_bytes(bad_images["notes"].read_bytes())
    r = cli("compress", "--task", TASK, "--out", tmp_path / "out", "--json", photos, code=1)  # a folder
    body = json.loads(r.stdout)
    assert sorted((os.path.basename(x["path"]), x["ok"]) for x in body) == [
        ("astronaut.png", True), ("coffee.png", True), ("notes.jpg", False)]
    assert all(x["bytes"] > 0 for x in body if x["ok"])
    dec = json.loads(cli("decode", tmp_path / "out" / "coffee.tcb", "--for", "human", "--json",
                         "--out", tmp_path / "coffee.png").stdout)
    assert dec["image"] == str(tmp_path / "coffee.png") and dec["layers_used"] >= 1
    (photos / "notes.jpg").unlink()
    items = json.loads(cli("archive", "--task", TASK, "--source", photos, "--out", tmp_path / "arch",
                           "--json").stdout)
    assert sorted(i["status"] for i in items) == ["archived", "archived"]


def test_a_mac_key_signs_every_stream_and_catches_a_forged_payload(home, astronaut, tmp_path, monkeypatch):
    """CRCs are not authentication: a payload changed with its CRC recomputed decodes to other pixels,
    unless the stream is signed and the reader checks the signature."""
    from taskcodec.codec import bitstream as bsm
    from taskcodec.settings import get_settings

    key = tmp_path / "archive.key"
    key.write_bytes(b"a secret of at least sixteen bytes")
    monkeypatch.setenv("TASKCODEC_MAC_KEY_FILE", str(key))
    get_settings.cache_clear()
    tcb = make_tcb(astronaut, TASK, tmp_path / "s.tcb", quality=30)
    assert json.loads(cli("info", tcb, "--json").stdout)[0]["signed"] is True
    cli("decode", tcb, "--for", "human", "--out", tmp_path / "ok.png")
    # forge: change the base layer, recompute its CRC and the header's, keep the (now wrong) signature
    from taskcodec.codec import format_v2

    data = tcb.read_bytes()
    bs = bsm.unpack(data)
    payloads = list(bs.payloads)
    base = bytearray(payloads[0])
    base[len(base) // 2] ^= 0x55
    payloads[0] = bytes(base)
    layers = (bs.header.layers[0].model_copy(update={"crc": format_v2.layer_crc(payloads[0])}), *bs.header.layers[1:])
    forged = bsm.pack(bs.header.model_copy(update={"layers": layers}), payloads)
    forged = forged[:6] + bytes([forged[6] | 1]) + forged[7:] + data[-32:]
    (tmp_path / "forged.tcb").write_bytes(forged)
    r = cli("decode", tmp_path / "forged.tcb", "--for", "human", "--out", tmp_path / "f.png", code=1)
    assert "MAC mismatch" in r.output and not (tmp_path / "f.png").exists()
    monkeypatch.delenv("TASKCODEC_MAC_KEY_FILE")
    get_settings.cache_clear()
    r = cli("decode", tcb, "--for", "human", "--out", tmp_path / "nokey.png")
    assert "is signed (HMAC)" in " ".join(r.output.split())
