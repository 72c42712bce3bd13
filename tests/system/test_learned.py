"""The learned codec: region streams, bit-exact partial decoding, rates, budgets, weights, training."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from taskcodec.codec import bitstream as bsm
from taskcodec.codec import learned
from taskcodec.codec.learned.model import GainedMeanScaleHyperprior
from taskcodec.codec.learned.weights import SHIPPED, save_weights
from taskcodec.codec.api import ObjectRequest
from taskcodec.errors import BitstreamError, BudgetError, TaskcodecError
from tests.conftest import SHARED

FACE = (177.0, 66.0, 272.0, 161.0)
ROCKET = (380.0, 200.0, 500.0, 480.0)
BODY = (100.0, 40.0, 400.0, 500.0)


def req(i, box, importance=1.0, label="person"):
    return ObjectRequest(object_index=i, label=label, box=box, importance=importance,
                         tier="high" if importance >= 0.75 else "medium" if importance >= 0.4 else "low")


def psnr(a, b, mask=None):
    d = (a.astype(float) - b.astype(float)) ** 2
    return 10 * np.log10(255**2 / (d[mask] if mask is not None else d).mean())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny randomly initialised model, saved and loaded like real weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(GainedMeanScaleHyperprior(N=8, M=12), path)
    return learned.load_model(path)


@pytest.fixture(scope="module")
def shipped():
    return learned.load_model(SHIPPED)


def own_mask(y_hat_shape, rects):
    """Latent positions of each layer rect minus the earlier ones, like the codec's ownership rule."""
    h, w = y_hat_shape[-2:]
    taken, owns = np.zeros((h, w), bool), []
    for x0, y0, x1, y1 in rects:
        own = np.zeros((h, w), bool)
        own[y0:y1, x0:x1] = ~taken[y0:y1, x0:x1]
        taken[y0:y1, x0:x1] = True
        owns.append(own)
    return owns


def test_any_subset_of_regions_decodes_bit_exact_inside_and_hyperprior_mean_outside(astronaut_pixels, tiny):
    reqs = [req(0, FACE), req(1, ROCKET, 0.6, "rocket"), req(2, BODY, 0.3, "body")]
    r = learned.encode(astronaut_pixels, reqs, learned.Params(quality=70), model=tiny)
    full = learned.decode(bsm.unpack(r.data), model=tiny, keep_latent=True)
    rects = [e.meta["rect"] for e in r.header.layers[1:]]
    owns = own_mask(full.latent.shape, rects)
    assert [e.kind for e in r.header.layers] == ["base", "object", "object", "object"]
    assert not (owns[0] & owns[2]).any() and owns[2].any()  # the body's layer skips the face: coded once
    base = learned.decode(bsm.unpack(r.data), max_objects=0, model=tiny, keep_latent=True)
    for n in (1, 2):
        part = learned.decode(bsm.unpack(r.data), max_objects=n, model=tiny, keep_latent=True)
        inside = torch.from_numpy(np.logical_or.reduce(owns[:n]))
        assert torch.equal(part.latent[..., inside], full.latent[..., inside])  # bit-exact
        assert torch.equal(part.latent[..., ~inside], base.latent[..., ~inside])  # μ, the hyperprior mean
        assert not torch.equal(part.latent[..., ~inside], full.latent[..., ~inside])
    # a truncated file is a prefix: the same latent as max_objects=1
    cut = bsm.unpack(r.data[: len(r.data) - r.header.layers[-1].length - r.header.layers[-2].length + 3])
    assert len(cut.layers) == 2 and cut.problems
    assert torch.equal(learned.decode(cut, model=tiny, keep_latent=True).latent,
                       learned.decode(bsm.unpack(r.data), max_objects=1, model=tiny, keep_latent=True).latent)


def test_mask_covers_the_object_latent_and_base_is_the_zhat_picture(astronaut_pixels, tiny):
    r = learned.encode(astronaut_pixels, [req(0, FACE)], learned.Params(quality=50), model=tiny)
    d = learned.decode(bsm.unpack(r.data), model=tiny)
    x0, y0, x1, y1 = map(int, FACE)
    assert d.mask[y0:y1, x0:x1].all() and 0 < d.mask.mean() < 0.2
    assert d.pixels.shape == d.base.shape == astronaut_pixels.shape
    zero = learned.decode(bsm.unpack(r.data), max_objects=0, model=tiny)
    assert not zero.mask.any() and (zero.pixels == d.base).all()


def test_importance_sets_the_rate_level_and_overlapping_object_is_covered(astronaut_pixels, tiny):
    reqs = [req(0, BODY), req(1, FACE, 0.3, "face")]
    r = learned.encode(astronaut_pixels, reqs, learned.Params(quality=60), model=tiny)
    assert r.outcomes[1].action == "drop" and r.outcomes[1].reason == "covered"
    r = learned.encode(astronaut_pixels, [req(0, FACE), req(1, ROCKET, 0.3)], learned.Params(quality=60), model=tiny)
    high, low = r.header.layers[1], r.header.layers[2]
    assert high.quality == 60 and low.quality == 40 and high.meta["level"] > low.meta["level"]
    assert high.meta["level"] == learned.level_for(60, tiny.model.levels)


def test_budget_downgrades_then_drops_least_important_first(astronaut_pixels, tiny):
    reqs = [req(0, FACE), req(1, ROCKET, 0.5, "rocket"), req(2, (0, 300, 200, 500), 0.2, "ground")]
    free = learned.encode(astronaut_pixels, reqs, learned.Params(quality=100), model=tiny)
    budget = len(free.data) - free.header.layers[3].length // 2
    r = learned.encode(astronaut_pixels, reqs, learned.Params(quality=100, budget_bytes=budget), model=tiny)
    assert len(r.data) <= budget
    assert r.outcomes[0].action == "transmit"
    assert r.outcomes[-1].reason in ("budget_downgrade", "budget_exhausted")
    with pytest.raises(BudgetError, match="side stream"):
        learned.encode(astronaut_pixels, reqs, learned.Params(budget_bytes=50), model=tiny)


def test_a_stream_made_by_other_weights_is_refused(astronaut_pixels, tiny, tmp_path):
    torch.manual_seed(1)
    other = learned.load_model(save_weights(GainedMeanScaleHyperprior(N=8, M=12), tmp_path / "other.safetensors"))
    r = learned.encode(astronaut_pixels, [], learned.Params(quality=30, full=True), model=tiny)
    assert r.header.settings["model"] == tiny.model_id != other.model_id
    with pytest.raises(BitstreamError, match="made by learned-codec weights 'tiny@"):
        learned.decode(bsm.unpack(r.data), model=other)


def test_forged_rect_and_damaged_stream_are_clear_errors(astronaut_pixels, tiny):
    r = learned.encode(astronaut_pixels, [req(0, FACE)], learned.Params(quality=50), model=tiny)
    bs = bsm.unpack(r.data)
    layers = list(bs.header.layers)
    layers[1] = layers[1].model_copy(update={"meta": {**layers[1].meta, "rect": [0, 0, 999, 4]}})
    forged = bsm.Bitstream(bs.header.model_copy(update={"layers": tuple(layers)}), bs.payloads)
    with pytest.raises(BitstreamError, match="layer 1 .*latent rectangle"):
        learned.decode(forged, model=tiny)
    with pytest.raises(BitstreamError, match="layer 0 .*missing"):
        learned.decode(bsm.Bitstream(bs.header, []), model=tiny)


def test_odd_sizes_and_tiles(tiny, monkeypatch):
    from taskcodec.settings import get_settings

    rng = np.random.default_rng(0)
    px = (rng.random((300, 270, 3)) * 255).astype(np.uint8)
    a = learned.decode(bsm.unpack(learned.encode(px, [], learned.Params(full=True), model=tiny).data), model=tiny)
    assert a.pixels.shape == px.shape
    monkeypatch.setenv("TASKCODEC_LEARNED_TILE", "128")
    get_settings.cache_clear()
    try:
        from taskcodec.codec.learned.streams import _tile_setting

        assert _tile_setting() == 128  # the setting reaches the codec (through config.current)
        r = learned.encode(px, [], learned.Params(full=True), model=tiny)
        b = learned.decode(bsm.unpack(r.data), model=tiny)
    finally:
        monkeypatch.delenv("TASKCODEC_LEARNED_TILE")
        get_settings.cache_clear()
    assert b.pixels.shape == px.shape
    assert psnr(a.pixels, b.pixels) > 25  # tiles with a halo: close to the whole-image transform


def test_weights_files_are_safetensors_with_metadata(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(TaskcodecError, match="bad.safetensors: cannot be read as safetensors"):
        learned.load_model(tmp_path / "bad.safetensors")
    with pytest.raises(TaskcodecError, match="do not exist"):
        learned.load_model(tmp_path / "none.safetensors")
    assert SHIPPED.stat().st_size < 50 * 2**20
    assert not any(k.endswith("_quantized_cdf") for k in load_file(str(SHIPPED)))


def test_shipped_weights_trade_rate_for_quality(shipped, astronaut_pixels):
    """One model, many rates: more quality costs more bytes and gives a better picture."""
    rows = []
    for q in (1, 50, 100):
        r = learned.encode(astronaut_pixels, [], learned.Params(quality=q, full=True), model=shipped)
        d = learned.decode(bsm.unpack(r.data), model=shipped)
        rows.append((len(r.data), psnr(d.pixels, astronaut_pixels)))
    assert rows[0][0] < rows[1][0] < rows[2][0]
    assert rows[0][1] < rows[1][1] < rows[2][1]
    assert rows[1][1] > 26
    objects = learned.encode(astronaut_pixels, [req(0, FACE)], learned.Params(quality=50), model=shipped)
    d = learned.decode(bsm.unpack(objects.data), model=shipped)
    assert psnr(d.pixels, astronaut_pixels, d.mask) > psnr(d.base, astronaut_pixels, d.mask) + 3


def test_training_resumes_exactly_where_it_stopped(tmp_path):
    from PIL import Image

    from taskcodec.codec.learned.train import TrainConfig, train

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8)).save(data / f"{i}.png")
    kw = dict(data=str(data), batch=2, crop=64, N=8, M=12, checkpoint_every=2, log_every=1, mask_prob=1.0)
    straight = train(TrainConfig(out=str(tmp_path / "a"), steps=4, **kw))
    train(TrainConfig(out=str(tmp_path / "b"), steps=2, **kw))
    resumed = train(TrainConfig(out=str(tmp_path / "b"), steps=4, **kw))
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert a.keys() == b.keys()  # same data order and noise; weights equal up to float rounding
    # (Adam turns float-rounding differences of tiny gradients into ~1e-5 steps; a fresh start differs by ~1e-1)
    assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-4) for k in a if k.startswith("model."))
    from safetensors import safe_open

    with safe_open(str(resumed), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    assert meta["step"] == 4 and [h["step"] for h in meta["history"]] == [1, 2, 3, 4]
    with safe_open(str(straight), "pt") as f:
        first = json.loads(f.metadata()["meta"])["history"]
    assert [h["loss"] for h in first] == pytest.approx([h["loss"] for h in meta["history"]], rel=1e-4)
    assert all(np.isfinite(h["loss"]) for h in meta["history"])


def test_training_imports_no_codec_layers_and_the_codec_names_load_on_use():
    """A training host (the lent GPU) needs torch, CompressAI and safetensors only."""
    import subprocess
    import sys

    probe = ("import sys, taskcodec.codec.learned.train; "
             "print(sorted(m for m in ('pydantic', 'taskcodec.codec.bitstream', 'taskcodec.codec.learned.streams') "
             "if m in sys.modules)); "
             "from taskcodec.codec import learned; print(learned.CODEC_ID, callable(learned.load_model))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == f"{learned.CODEC_ID} True"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        learned.nope  # noqa: B018


def test_random_masking_drops_up_to_half_of_the_latent():
    from taskcodec.codec.learned.train import TrainConfig, random_keep

    cfg = TrainConfig(data="", out="", mask_prob=1.0, mask_max=0.5)
    keep = random_keep(64, 8, 8, cfg, torch.Generator().manual_seed(0))
    dropped = 1 - keep.float().mean(dim=(1, 2, 3))
    assert keep.shape == (64, 1, 8, 8) and dropped.max() <= 0.75 and dropped.mean() < 0.4 and dropped.max() > 0.2
    none = random_keep(8, 8, 8, TrainConfig(data="", out="", mask_prob=0.0), torch.Generator())
    assert none.all()


def test_cli_learned_codec_task_and_whole_image(prefect_server, home, astronaut, tmp_path):
    from typer.testing import CliRunner

    from taskcodec.cli import app

    def run(*args, code=0):
        r = CliRunner().invoke(app, [str(a) for a in args])
        assert r.exit_code == code, r.output
        return r

    out = tmp_path / "out"
    run("compress", "--codec", "learned", "--task", "privacy audit: keep people and faces sharp", "--out", out,
        "--quality", "60", astronaut)
    audit = json.loads(run("why", out / "astronaut.tcb", "--json").stdout)[0]
    assert audit["codec"] == "learned"
    assert [l["kind"] for l in audit["layers"]][:2] == ["base", "object"]
    sent = [d for d in audit["decisions"] if d["action"] == "transmit"]
    assert sum(d["bytes"] for d in sent) == sum(l["bytes"] for l in audit["layers"])
    assert any("1/64 scale" in d["sentence"] for d in sent)
    assert not any("None" in d["sentence"] for d in audit["decisions"])  # ẑ has no quality: none printed
    run("decode", out / "astronaut.tcb", "--for", "human", "--reconstruct", "classical", "--out", tmp_path / "a.png")
    meta = json.loads((tmp_path / "a.png.json").read_text())
    assert 0 < meta["transmitted_fraction"] < 0.95  # the astronaut's box is most of the frame

    run("compress", "--codec", "learned", "--full", "--quality", "40", "--out", tmp_path / "full", astronaut)
    full = json.loads(run("why", tmp_path / "full" / "astronaut.tcb", "--json").stdout)[0]
    assert [l["kind"] for l in full["layers"]] == ["base", "background"]
    assert [d["reason"] for d in full["decisions"]] == ["full_image"]
    assert full["decisions"][0]["bytes"] == sum(l["bytes"] for l in full["layers"])
    run("decode", tmp_path / "full" / "astronaut.tcb", "--for", "human", "--reconstruct", "none",
        "--out", tmp_path / "f.png")
    from PIL import Image

    assert Image.open(tmp_path / "f.png").size == (512, 512)


def test_untrained_model_starts_as_a_block_dct_transform_coder(astronaut_pixels):
    """The linear path is a YCbCr block DCT and the GDN stacks start at zero: g_s(g_a(x)) ≈ x from step 0."""
    from taskcodec.codec.learned.model import LINEAR_SCALE, block_dct

    ana, syn = block_dct(96)
    flat_a, flat_s = ana.reshape(96, -1), syn.reshape(96, -1)
    # synthesis ∘ analysis is the identity on the kept coefficients
    assert torch.allclose(flat_a @ flat_s.T, torch.eye(96), atol=1e-4)
    assert flat_a[0].abs().max() == pytest.approx(LINEAR_SCALE * 0.587 / 16, rel=1e-4)  # DC of Y: G weight
    net = GainedMeanScaleHyperprior(64, 96).eval()
    x = torch.from_numpy(astronaut_pixels.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        x_hat = net.g_s(net.g_a(x)).clamp(0, 1)
    assert psnr((x_hat[0].permute(1, 2, 0) * 255).round().byte().numpy(), astronaut_pixels) > 26


def test_widening_keeps_what_was_trained_and_adds_dct_channels(tmp_path):
    """M=12 weights into an M=24 model: trained channels map to the same DCT coefficients, the
    trained stacks see what they saw before, and the new channels get the given σ and μ = 0."""
    from taskcodec.codec.learned.model import block_dct
    from taskcodec.codec.learned.train import TrainConfig, train
    from taskcodec.codec.learned.widen import channel_map, init_from

    cmap = channel_map(12, 24)  # Y 8→16, Cb 2→4, Cr 2→4
    assert cmap.tolist() == list(range(8)) + [16, 17, 20, 21]
    assert torch.equal(block_dct(24)[0][cmap], block_dct(12)[0])
    torch.manual_seed(1)
    old = GainedMeanScaleHyperprior(8, 12)
    with torch.no_grad():  # "trained": every parameter away from its initial value
        for p in old.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    wide = GainedMeanScaleHyperprior(8, 24)
    sigma = torch.full((24,), 0.7)
    init_from(wide, old.state_dict(), 12, sigma)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y_old, y_new = old.g_a(x), wide.g_a(x)
        assert torch.allclose(y_new[:, cmap], y_old, atol=1e-5)
        z_old, z_new = old.h_a(y_old), wide.h_a(y_new)
        assert torch.allclose(z_new, z_old, atol=1e-5)
        s_old, m_old = old.hyper(z_old)
        s_new, m_new = wide.hyper(z_old)
        assert torch.allclose(s_new[:, cmap], s_old, atol=1e-5) and torch.allclose(m_new[:, cmap], m_old, atol=1e-5)
        fresh = torch.ones(24, dtype=torch.bool)
        fresh[cmap] = False
        assert torch.allclose(s_new[:, fresh], torch.tensor(0.7)) and (m_new[:, fresh] == 0).all()
        assert torch.allclose(wide.g_s.layers(y_new), old.g_s.layers(y_old), atol=1e-5)
        assert torch.equal(wide.log_gain[:, cmap], old.log_gain)
    with pytest.raises(TaskcodecError, match="only widening"):
        init_from(GainedMeanScaleHyperprior(8, 12), wide.state_dict(), 24)

    # train-codec --init: a new run starts from the weights (lr 0 keeps them exactly)
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray((np.random.default_rng(0).random((80, 96, 3)) * 255).astype(np.uint8)).save(data / "0.png")
    save_weights(old, tmp_path / "old.safetensors")
    ckpt = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), steps=1, batch=2, crop=64, N=8, M=24,
                             lr=0.0, init=str(tmp_path / "old.safetensors")))
    got = load_file(str(ckpt))
    assert torch.equal(got["model.g_a.layers.6.weight"][cmap], old.g_a.layers[6].weight.detach())
    assert (got["model.g_a.layers.6.weight"][fresh] == 0).all()
    with pytest.raises(TaskcodecError, match="N=8, not N=16"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "run2"), steps=1, batch=2, crop=64, N=16, M=24,
                          init=str(tmp_path / "old.safetensors")))


def test_fast_index_search_matches_compressai_loop():
    """build_indexes by binary search gives CompressAI's indexes exactly, table edges included."""
    from compressai.entropy_models import GaussianConditional

    from taskcodec.codec.learned.model import FastGaussianConditional, scale_table

    ref, fast = GaussianConditional(None), FastGaussianConditional(None)
    ref.update_scale_table(scale_table())
    fast.update_scale_table(scale_table())
    t = scale_table()
    x = torch.cat([torch.exp(torch.randn(20000) * 3), t, torch.nextafter(t, t * 2), torch.nextafter(t, t * 0),
                   torch.tensor([0.0, 1e-9, 1e9, 0.11, 256.0, 0.05, 1.0, 300.0])]).reshape(4, -1)
    assert torch.equal(fast.build_indexes(x), ref.build_indexes(x))


@pytest.mark.skipif(not (SHARED / "data" / "train").is_dir(), reason=f"shared training data not found under {SHARED}")
def test_train_codec_cli_runs_with_its_progress_bar(tmp_path):
    from typer.testing import CliRunner

    from taskcodec.cli import app

    r = CliRunner().invoke(app, ["train-codec", "--steps", "2", "--batch", "1", "--crop", "64", "--out",
                                 str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "step      2/2" in r.output and (tmp_path / "run" / "checkpoint.safetensors").is_file()
    assert (tmp_path / "run" / "log.jsonl").read_text().count("\n") >= 1


def test_learned_streams_are_v2_and_the_same_layers_in_a_v1_container_decode_the_same(astronaut_pixels, tiny):
    from taskcodec.codec import format_v1

    reqs = [req(0, FACE), req(1, ROCKET, 0.2, "rocket")]  # low importance: a negative rate level
    r = learned.encode(astronaut_pixels, reqs, learned.Params(quality=20, background_quality=5), model=tiny)
    bs = bsm.unpack(r.data)
    assert bs.version == (2, 0) and [e.kind for e in bs.layers] == ["base", "object", "object", "background"]
    assert [e.meta.get("level") for e in bs.layers] == [e.meta.get("level") for e in r.header.layers]
    assert min(e.meta["level"] for e in bs.layers[1:]) < 0
    v1 = bsm.unpack(format_v1.pack(r.header, bs.payloads))
    assert v1.version == (1, 0)
    assert (learned.decode(v1, model=tiny).pixels == learned.decode(bs, model=tiny).pixels).all()


def test_learned_streams_are_pinned_byte_for_byte():
    from tests.pinned import PINNED, digests

    assert digests("learned") == PINNED["learned"], "the learned codec writes other bytes than before"


def test_region_streams_on_the_model_decode_to_the_quantised_latent(astronaut_pixels, tiny):
    """compress_side / compress_region on the model, as CompressAI's compress / decompress: each region
    decodes alone to Q((y − μ)·g)/g + μ, and ẑ's stream gives the decoder the encoder's (σ, μ)."""
    net = tiny.model
    with torch.inference_mode():
        y = net.g_a(torch.from_numpy(np.array(astronaut_pixels)).permute(2, 0, 1)[None].float() / 255)
        side, shape, scales, means = net.compress_side(y)
        s2, m2 = net.decompress_side(side, shape)
        assert torch.equal(s2, scales) and torch.equal(m2, means)
        a, b = own_mask(y.shape, [(2, 2, 10, 10), (0, 0, 32, 32)])
        for own, level in ((a, 4.0), (b, 0.5)):
            got = net.decompress_region(net.compress_region(y, scales, means, own, level), scales, means, own, level)
            ys, xs = np.nonzero(own)
            g = net.gain(level)[:, None]
            want = torch.round((y[0][:, ys, xs] - means[0][:, ys, xs]) * g) / g + means[0][:, ys, xs]
            assert got.shape == (net.M, int(own.sum())) and torch.allclose(got, want, atol=1e-5)
