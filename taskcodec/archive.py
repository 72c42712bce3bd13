"""Archive stages: what is new, the idempotency key, verification and safe deletion, and
``archive_one`` composing them for one image (the archive flow runs it as a Prefect task).

An image is archived once per (content, policy version, codec settings, output folder):
that hashes to ``archive_key``, unique in the store, so a re-run or a run after a crash
never encodes it twice. One run at a time writes into an output folder (``output_lock``).
An original is deleted only after its bitstream in the current output folder was read
back from disk, hash-checked against its record, decoded to the right size and its row
committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from taskcodec import stages
from taskcodec.codec import bitstream, get_codec
from taskcodec.domain.policy import TaskPolicy
from taskcodec.errors import BitstreamError, TaskcodecError, error_text
from taskcodec.imageio import sha256_file
from taskcodec.settings import Settings, get_settings
from taskcodec.store import models as m
from taskcodec.store.db import session

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".avif", ".bmp", ".tif", ".tiff", ".gif"}


def list_images(source: str | Path) -> list[Path]:
    root = Path(source)
    if not root.is_dir():
        raise TaskcodecError(f"{root}: source folder does not exist")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def archive_key(image_sha256: str, policy_id: int, codec: str, settings: dict) -> str:
    blob = json.dumps({"image": image_sha256, "policy": policy_id, "codec": codec, "settings": settings},
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def output_path(out_dir: str | Path, source: str | Path, image: str | Path) -> Path:
    """The bitstream mirrors the image's place under the source folder: a/b.jpg -> OUT/a/b.jpg.tcb."""
    real, root = Path(image).resolve(), Path(source).resolve()
    if not real.is_relative_to(root):
        raise TaskcodecError(f"{image}: a link to {real}, outside --source {source}: not archived")
    rel = real.relative_to(root)
    return Path(out_dir) / rel.parent / (rel.name + ".tcb")


def sweep_temp_files(out_dir: str | Path) -> int:
    """Remove the temporary files a killed run left behind (``.<name>.<random>.tmp``)."""
    n = 0
    for p in Path(out_dir).rglob(".*.tmp"):
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n


def verify_file(path: str | Path, expect_sha256: str | None = None) -> bitstream.Bitstream:
    """Read a bitstream back from disk and prove it decodes completely; raises BitstreamError otherwise."""
    data = Path(path).read_bytes()
    if expect_sha256 is not None and hashlib.sha256(data).hexdigest() != expect_sha256:
        raise BitstreamError("content differs from the recorded bitstream", path)
    bs = bitstream.unpack(data, path)
    if bs.problems:
        raise BitstreamError("; ".join(bs.problems), path)
    decoded = get_codec(bs.header.codec).decode(bs)
    if decoded.pixels.shape[:2] != (bs.header.height, bs.header.width):
        raise BitstreamError("decoded size differs from the header", path)
    return bs


@dataclass
class Archived:
    encoding_id: int
    bitstream_path: str
    bitstream_sha256: str


def find_archived(key: str, settings: Settings | None = None) -> Archived | None:
    """The encoding already stored under ``key`` whose file is still present and intact."""
    with session(settings) as s:
        row = s.exec(select(m.Encoding).where(m.Encoding.archive_key == key)).first()
    if row is None:
        return None
    return Archived(row.id, row.bitstream_path, row.bitstream_sha256)


def drop_stale(key: str, settings: Settings | None = None) -> None:
    """Release the key of an encoding whose file is gone or damaged, so the image is archived
    again; the old rows stay, as the audit of what was once written."""
    with session(settings) as s:
        row = s.exec(select(m.Encoding).where(m.Encoding.archive_key == key)).first()
        if row is not None:
            row.archive_key = None
            s.add(row)
            s.commit()


def delete_original(image: str | Path, archived: Archived, out_dir: str | Path) -> None:
    """Delete ``image`` only if its bitstream lies in ``out_dir`` and verifies against the stored record."""
    if not Path(archived.bitstream_path).resolve().is_relative_to(Path(out_dir).resolve()):
        raise TaskcodecError(f"{image}: not deleted: its archived copy {archived.bitstream_path} is not in {out_dir}")
    verify_file(archived.bitstream_path, archived.bitstream_sha256)
    os.unlink(image)


class ArchiveBusyError(TaskcodecError):
    """Another archive run is writing into the same output folder."""


LOCK_NAME = ".taskcodec-archive.lock"


def output_lock(out_dir: str | Path):
    """The lock that lets one archive run at a time write into ``out_dir`` (``filelock``; released by
    the OS if the process dies). Entering it raises ``ArchiveBusyError`` at once if another run holds it."""
    from contextlib import contextmanager

    from filelock import FileLock, Timeout

    path = Path(out_dir) / LOCK_NAME

    @contextmanager
    def held():
        lock = FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ArchiveBusyError(f"{out_dir}: another archive run is writing into this folder (lock {path}); "
                                   "wait for it to finish or archive into another --out") from None
        try:
            yield
        finally:
            lock.release()

    return held()


def mismatches(items: list[tuple[str, str]]) -> dict[str, str]:
    """path -> why, for the bitstreams whose bytes on disk no longer hash to their record
    (``items``: (path, recorded sha256) pairs)."""
    from taskcodec.imageio import sha256_file

    bad = {}
    for path, sha in items:
        try:
            if sha256_file(path) != sha:
                bad[path] = f"{path}: differs from its record (written over by something else)"
        except OSError as exc:
            bad[path] = f"{path}: {exc.strerror or exc}"
    return bad


class ArchiveItem(BaseModel):
    path: str
    status: str  # archived | skipped | failed
    reason: str = ""
    bitstream: str | None = None
    bytes: int | None = None
    sha256: str | None = None  # of the bitstream, as recorded
    deleted_original: bool = False
    seconds: float = 0.0


def archive_one(path: str, source: str, out_dir: str, policy: TaskPolicy, codec: str, quality: int,
                grounding: str | None, delete_originals: bool, run_id: int | None) -> ArchiveItem:
    t0 = time.perf_counter()
    try:
        sha = sha256_file(path)
        settings = get_settings()  # what the output depends on, defaults resolved
        params = {"quality": quality, "grounding": grounding or settings.grounding, "uncovered": settings.uncovered,
                  "out": str(Path(out_dir).resolve())}  # another folder is another archive
        key = archive_key(sha, policy.policy_id, codec, params)
        done = find_archived(key)
        if done is not None:
            try:
                verify_file(done.bitstream_path, done.bitstream_sha256)
            except (BitstreamError, OSError):
                drop_stale(key)  # its file is gone or damaged: archive it again
                done = None
        if done is not None:
            deleted = _delete(path, done, delete_originals, out_dir)
            return ArchiveItem(path=path, status="skipped", reason="already archived", bitstream=done.bitstream_path,
                               sha256=done.bitstream_sha256, deleted_original=deleted,
                               seconds=round(time.perf_counter() - t0, 3))
        image = stages.load(path)
        if image.sha256 != sha:
            raise TaskcodecError(f"{path}: file changed while it was being archived")
        g = stages.ground_image(image, policy, grounding)
        encoded = stages.encode_grounded(image, g, policy, codec, quality)
        out = stages.write_bitstream(output_path(out_dir, source, path), encoded.data,
                                       overwrite=True)  # the archive's own folder: its keys decide
        verify_file(out)  # read back from disk and decoded before the row is committed
        try:
            enc_id = stages.record(image, policy, encoded, out, g.backend, run_id,
                                     {"ground_s": g.seconds, "encode_s": encoded.seconds}, archive_key=key)
        except IntegrityError:  # a concurrent run archived the same content first: keep its row and file
            done = find_archived(key)
            return ArchiveItem(path=path, status="skipped", reason="archived concurrently",
                               bitstream=done.bitstream_path if done else None,
                               seconds=round(time.perf_counter() - t0, 3))
        done = Archived(enc_id, str(out.resolve()), hashlib.sha256(encoded.data).hexdigest())
        deleted = _delete(path, done, delete_originals, out_dir)
        return ArchiveItem(path=path, status="archived", bitstream=str(out), bytes=len(encoded.data),
                           sha256=done.bitstream_sha256, deleted_original=deleted,
                           seconds=round(time.perf_counter() - t0, 3))
    except Exception as exc:  # one bad image fails only itself
        return ArchiveItem(path=path, status="failed", reason=error_text(path, exc),
                           seconds=round(time.perf_counter() - t0, 3))


def _delete(path: str, done: Archived, enabled: bool, out_dir: str) -> bool:
    if not enabled:
        return False
    delete_original(path, done, out_dir)
    return True
