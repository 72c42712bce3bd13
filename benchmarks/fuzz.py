"""Fuzz the bitstream reader and both decoders with mutated, truncated and forged streams.

    .venv/bin/python benchmarks/fuzz.py [--cases 100000] [--codecs classical,learned] [--batch 2000]

Seeds are real streams of a small photo (whole-image and task streams, per codec). Each case is one
of: random byte changes (1-8 bytes), a truncation, a forged v2 binary header (1-8 body bytes changed,
its length and CRC recomputed), a forged JSON header (the stream's header, v2 geometry included, in a
v1 container with one field set to any JSON value, CRCs recomputed), or a forged payload (random bytes
or another layer's, CRC recomputed). Cases run in
child processes of ``--batch`` cases each; a case must end in a decoded image or the project's own
error (``TaskcodecError``) within ``--case-timeout`` seconds. Counted: clean errors, decoded streams,
crashes (any other exception, or a child that died), hangs (over the time limit) and batches whose
child went over 2 GB of memory (its peak RSS). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMORY_LIMIT_KB = 2 * 1024 * 1024
KINDS = ("bytes", "truncate", "v2header", "header", "payload")


def seeds(codec: str) -> list[bytes]:
    """Real streams of a 96x64 crop of scikit-image's astronaut: whole-image and with object layers."""
    import numpy as np
    import skimage.data

    from taskcodec import stages
    from taskcodec.imageio import LoadedImage

    pixels = np.ascontiguousarray(skimage.data.astronaut()[::4, ::4][:64, :96])
    img = LoadedImage("astronaut-crop", pixels, "-", pixels.nbytes)
    policy = stages.plan_task("privacy audit: keep people and faces sharp")
    task = stages.encode_grounded(img, stages.ground_image(img, policy, "yolox"), policy, codec, quality=40)
    return [stages.encode_full(img, codec, quality=40).data, task.data]


def _json_value(rng: random.Random, depth: int = 0):
    makers = [lambda: None, lambda: True, lambda: rng.randint(-2**40, 2**40),
              lambda: rng.random() * 10**rng.randint(0, 12), lambda: "x" * rng.randint(0, 9),
              lambda: rng.choice([0, -1, 65535, 2**31, 2**63]),
              lambda: [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))],
              lambda: {str(rng.randint(0, 9)): _json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}]
    return makers[rng.randrange(8 if depth < 2 else 6)]()


def _split(data: bytes):
    from taskcodec.codec import bitstream as bsm

    header, offset = bsm.parse_header(data)
    body = header.model_dump(mode="json")
    payloads, pos = [], offset
    for e in header.layers:
        payloads.append(data[pos:pos + e.length])
        pos += e.length
    return body, payloads


def forge_v2(data: bytes, rng: random.Random) -> bytes:
    """``data`` (a v2 stream) with 1-8 bytes of its header body changed and the header's CRC made valid."""
    from taskcodec.codec import bitstream as bsm
    from taskcodec.codec import format_v2

    _, offset = bsm.parse_header(data)
    r = format_v2._Reader(data, None)
    r.pos = format_v2.PREAMBLE.size
    hlen = r.varint("header length")
    body = bytearray(data[r.pos:r.pos + hlen])
    for _ in range(rng.randint(1, 8)):
        body[rng.randrange(len(body))] = rng.randrange(256)
    return (data[:format_v2.PREAMBLE.size] + format_v2._varint(len(body)) + bytes(body)
            + zlib.crc32(bytes(body)).to_bytes(4, "little") + data[offset:])


def _pack(body: dict, payloads: list[bytes], fix_crcs: bool = True) -> bytes:
    """A v1 (JSON) container around ``body``: any field can hold any JSON value."""
    from taskcodec.codec import bitstream as bsm
    from taskcodec.codec import format_v1

    body = {k: v for k, v in body.items() if k != "policy_labels"}
    if fix_crcs:
        for entry, p in zip(body["layers"], payloads):
            if isinstance(entry, dict):
                entry.pop("crc", None)
                entry["crc32"], entry["length"] = zlib.crc32(p), len(p)
    blob = json.dumps(body).encode()
    return format_v1.PREAMBLE.pack(bsm.MAGIC, 1, 0, 0, len(blob), zlib.crc32(blob)) + blob + b"".join(payloads)


def mutate(seed: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(KINDS)
    if kind == "bytes":
        d = bytearray(seed)
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        return kind, bytes(d)
    if kind == "truncate":
        return kind, seed[: rng.randrange(len(seed))]
    if kind == "v2header":
        return kind, forge_v2(seed, rng)
    body, payloads = _split(seed)
    if kind == "header":
        where = rng.choice(["width", "height", "codec", "codec_version", "settings", "layer", "meta"])
        if where == "layer":
            body["layers"][rng.randrange(len(body["layers"]))][rng.choice(
                ["kind", "label", "box", "quality", "index", "importance"])] = _json_value(rng)
        elif where == "meta":
            meta = body["layers"][rng.randrange(len(body["layers"]))]["meta"]
            key = rng.choice(list(meta) + ["format", "scale", "grid", "scale16", "rect", "level", "latent", "hyper"])
            meta[key] = _json_value(rng)
        else:
            body[where] = _json_value(rng) if rng.random() < 0.7 else rng.randint(1, 65535)
        return kind, _pack(body, payloads)
    i = rng.randrange(len(payloads))  # a forged payload, its CRC recomputed
    payloads[i] = (os.urandom(rng.randint(0, 2 * len(payloads[i]) + 8)) if rng.random() < 0.6
                   else payloads[rng.randrange(len(payloads))])
    return kind, _pack(body, payloads)


class _Hang(Exception):
    pass


def child(codec: str, seed: int, count: int, case_timeout: int) -> dict:
    """Run ``count`` cases; prints one JSON line of counts."""
    import torch

    torch.set_num_threads(1)
    from taskcodec import stages
    from taskcodec.codec import bitstream as bsm
    from taskcodec.errors import TaskcodecError

    rng = random.Random(seed)
    streams = seeds(codec)

    def alarm(_sig, _frame):
        raise _Hang()

    signal.signal(signal.SIGALRM, alarm)
    counts = {"cases": 0, "clean_errors": 0, "decoded": 0, "crashes": 0, "hangs": 0, "crash_kinds": {}}
    slowest = 0.0
    for _ in range(count):
        kind, data = mutate(rng.choice(streams), rng)
        counts["cases"] += 1
        t0 = time.perf_counter()
        signal.alarm(case_timeout)
        try:
            stages.decode_bitstream(bsm.unpack(data))
            counts["decoded"] += 1
        except TaskcodecError:
            counts["clean_errors"] += 1
        except _Hang:
            counts["hangs"] += 1
        except Exception as exc:  # a crash: not the project's own error
            counts["crashes"] += 1
            name = f"{kind}: {type(exc).__name__}: {str(exc)[:120]}"
            counts["crash_kinds"][name] = counts["crash_kinds"].get(name, 0) + 1
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.perf_counter() - t0)
    counts["slowest_s"] = round(slowest, 3)
    counts["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000, help="in all, shared between the codecs")
    ap.add_argument("--codecs", default="classical,learned")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--case-timeout", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("CODEC", "SEED", "COUNT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), int(args.child[2]), args.case_timeout)))
        return
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    env = {**os.environ, "TASKCODEC_HOME": os.environ.get("TASKCODEC_HOME") or str(Path("/tmp/taskcodec-fuzz-home"))}
    totals = {c: {"cases": 0, "clean_errors": 0, "decoded": 0, "crashes": 0, "hangs": 0, "died": 0,
                  "over_2gb": 0, "max_rss_mb": 0.0, "slowest_s": 0.0, "crash_kinds": {}} for c in codecs}
    t_start = time.perf_counter()
    per_codec = args.cases // len(codecs)
    batch_no = 0
    for codec in codecs:
        done = 0
        while done < per_codec:
            n = min(args.batch, per_codec - done)
            r = subprocess.run([sys.executable, __file__, "--child", codec, str(args.seed * 100_003 + batch_no), str(n),
                                "--case-timeout", str(args.case_timeout)], capture_output=True, text=True, env=env)
            batch_no += 1
            t = totals[codec]
            if r.returncode != 0 or not r.stdout.strip():
                t["died"] += 1
                t["cases"] += n
                t["crash_kinds"][f"child died (exit {r.returncode}): {r.stderr.strip()[-160:]}"] = 1
            else:
                c = json.loads(r.stdout.strip().splitlines()[-1])
                for k in ("cases", "clean_errors", "decoded", "crashes", "hangs"):
                    t[k] += c[k]
                for k, v in c["crash_kinds"].items():
                    t["crash_kinds"][k] = t["crash_kinds"].get(k, 0) + v
                t["max_rss_mb"] = max(t["max_rss_mb"], round(c["max_rss_kb"] / 1024, 1))
                t["over_2gb"] += c["max_rss_kb"] > MEMORY_LIMIT_KB
                t["slowest_s"] = max(t["slowest_s"], c["slowest_s"])
            done += n
            print(json.dumps({"codec": codec, **{k: v for k, v in t.items() if k != "crash_kinds"}}), flush=True)
    seconds = time.perf_counter() - t_start
    for t in totals.values():
        for k, v in sorted(t["crash_kinds"].items(), key=lambda kv: -kv[1])[:10]:
            print(f"  crash x{v}: {k}")
    if not args.no_docs:
        from taskcodec.bench.report import write_section

        cmd = ("python benchmarks/fuzz.py " + " ".join(sys.argv[1:])).strip()
        lines = [f"Command: `{cmd}` on {platform.machine()} with {os.cpu_count()} CPU cores, {seconds / 60:.1f} min. "
                 f"Mutations: byte changes, truncations, forged headers and forged payloads (CRCs recomputed), "
                 f"of real whole-image and task streams; batches of {args.batch} in child processes; a case over "
                 f"{args.case_timeout} s is a hang.", "",
                 "| codec | cases | clean errors | decoded | crashes | hangs | children died | batches over 2 GB "
                 "| peak RSS MB | slowest case s |", "|---|---|---|---|---|---|---|---|---|---|",
                 *[f"| {c} | {t['cases']:,} | {t['clean_errors']:,} | {t['decoded']:,} | {t['crashes']} | {t['hangs']} | "
                   f"{t['died']} | {t['over_2gb']} | {t['max_rss_mb']} | {t['slowest_s']} |" for c, t in totals.items()],
                 "", "Decoded: an image came out: the complete prefix of a cut or damaged stream (as the reader "
                 "promises), or a forged payload with its CRC recomputed, which gives other pixels (a CRC is not "
                 "authentication: docs/bitstream.md). Peak RSS is the child's, torch and the model included."]
        crashes = [f"- {c}: x{v} {k}" for c, t in totals.items() for k, v in t["crash_kinds"].items()]
        if crashes:
            lines += ["", "Crashes:", *crashes[:20]]
        write_section("fuzz", "Fuzzing the bitstream reader and decoders", "\n".join(lines))


if __name__ == "__main__":
    main()
