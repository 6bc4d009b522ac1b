"""Ingest: raw format -> sharded TFRecord files + ``metadata.json``.

The output folder holds, per split, ``<split>-<k>-of-<n>.tfrecord`` shards (clips dealt
round-robin in source order, so shard sizes differ by at most one) and ``metadata.json``
(:mod:`aslx.records.metadata`). Every clip is checked first; a bad one is skipped with one line
naming its file and the reason, counted, and listed in ``metadata.json``:

* the source file is missing or has the wrong columns (the reader reports it);
* the clip has no frames, or no hand is detected in any frame;
* its label holds a character (or class) outside the vocabulary;
* its phrase is too long for CTC to learn from its frames: CTC needs one frame per character
  plus one blank between each pair of repeated characters;
* a coordinate is infinite or absurdly large (damaged bytes;
  :func:`aslx.formats.clip.coordinate_problem`).

Writing is atomic: everything goes into a hidden ``.<out>.partial-<pid>`` folder beside the
output, which replaces the output only once complete. Any failure (a crash, Ctrl-C, a full
disk, a read error) removes the partial folder; a SIGKILL leaves it behind under a name no
reader accepts, and the next ingest into the same output deletes it. Ingesting the same
source twice gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
import types
import zlib
from collections.abc import Callable, Iterable, Mapping

import numpy as np
from etils import epath
from tqdm import tqdm

from aslx import ctc_frames, files
from aslx import vocab as vocab_lib
from aslx.formats import READERS, Clip, Skipped
from aslx.formats.clip import checked
from aslx.landmarks import layouts, presets
from aslx.landmarks.normalize import DEFAULT_CAMERA_ASPECT
from aslx.records import example, metadata
from aslx.tf_cpu import tensorflow

# A training job of N processes reads with N readers by default, each from its own shard
# files, so a split needs at least N files; 64 covers a v5e-256 slice (64 hosts) and keeps
# 100,000 clips in files of ~1,500. Small splits get fewer (empty shards are dropped).
DEFAULT_SHARDS = 64


def check_clip(clip: Clip, vocab: vocab_lib.Vocab) -> tuple[list[int], str | None]:
    """Returns (label ids, None) for a usable clip, or ([], reason) for one to skip."""
    frames = clip.num_frames
    if frames == 0:
        return [], "empty clip (no frames)"
    hands = np.concatenate(
        [clip.landmarks[:, layouts.group_slice(g)] for g in ("left_hand", "right_hand")], axis=1
    )
    if np.all(np.isnan(hands)):
        return [], f"no hand detected in any of its {frames} frames"
    if clip.label is None:
        return [], None
    try:
        ids = vocab.encode(clip.label)
    except vocab_lib.UnknownTokenError as e:
        return [], str(e)
    if isinstance(vocab, vocab_lib.CharVocab):
        if not ids:
            return [], "empty phrase"
        needed = ctc_frames.min_frames(np.asarray(ids))
        if needed > frames:
            return [], (
                f"phrase of {len(ids)} characters needs at least {needed} frames for CTC, "
                f"the clip has {frames}"
            )
    return ids, None


def assign_split(clip: Clip, val_fraction: float) -> str:
    """The clip's split: the source's own, else ``train``; with ``val_fraction`` > 0, a stable
    hash of the signer (``clip.group``, else the clip id) moves that share of signers from train
    to val, so no signer is in both."""
    split = clip.split or "train"
    if split == "train" and val_fraction > 0:
        key = clip.group if clip.group is not None else clip.clip_id
        if zlib.crc32(key.encode()) / 2**32 < val_fraction:
            split = "val"
    return split


class _ShardWriters:
    """Deals serialized records round-robin into ``num_shards`` files per split."""

    def __init__(self, folder: epath.Path, num_shards: int):
        self.folder, self.num_shards = folder, num_shards
        self.writers: dict[str, list] = {}
        self.counts: dict[str, list[int]] = {}

    def write(self, split: str, record: bytes) -> None:
        tf = tensorflow()

        if split not in self.writers:
            self.writers[split] = [
                tf.io.TFRecordWriter(os.fspath(self.folder / f"{split}-{k:05d}.tmp"))
                for k in range(self.num_shards)
            ]
            self.counts[split] = [0] * self.num_shards
        counts = self.counts[split]
        k = sum(counts) % self.num_shards
        self.writers[split][k].write(record)
        counts[k] += 1

    def close(self) -> dict[str, list[dict]]:
        """Closes every file, drops empty shards, names the rest ``<split>-k-of-n.tfrecord``."""
        shards = {}
        for split, writers in self.writers.items():
            for w in writers:
                w.close()
            kept = [k for k, c in enumerate(self.counts[split]) if c]
            shards[split] = []
            for k in range(self.num_shards):
                tmp = self.folder / f"{split}-{k:05d}.tmp"
                if k not in kept:
                    tmp.unlink()
                    continue
                name = metadata.shard_name(split, len(shards[split]), len(kept))
                tmp.rename(self.folder / name)
                shards[split].append({"file": name, "num_examples": self.counts[split][k]})
        return shards

    def abort(self) -> None:
        """Closes every file after a failure; a close that fails too (a full disk) must not
        hide the first error or stop the partial folder's removal."""
        for writers in self.writers.values():
            for w in writers:
                with contextlib.suppress(Exception):
                    w.close()


def _replace_folder(partial: epath.Path, out: epath.Path) -> None:
    """Moves the finished ``partial`` folder to ``out``, replacing an older output."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        partial.rename(out)
        old.rmtree()
    else:
        partial.rename(out)


def _in_set_aspect(clip, aspect: dict) -> np.ndarray:
    """The clip's points with y in the record set's camera aspect. The first clip whose format
    records its aspect fixes the set's when no ``--camera-aspect`` did (``aspect`` is updated
    in place); a clip of another aspect has y scaled by ``set / clip``, which leaves y / aspect,
    what normalisation uses, unchanged."""
    if clip.camera_aspect is None:
        return clip.landmarks
    if aspect["value"] is None:
        aspect["value"], aspect["from"] = float(clip.camera_aspect), "reader"
        return clip.landmarks
    if abs(clip.camera_aspect - aspect["value"]) < 1e-6:
        return clip.landmarks
    return clip.landmarks * np.array([1.0, aspect["value"] / clip.camera_aspect, 1.0], np.float32)


def _check_arguments(fmt: str, num_shards: int, val_fraction: float) -> None:
    """Raises ValueError for arguments :func:`ingest` cannot use, before anything is read."""
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {sorted(READERS)}")
    if num_shards < 1:
        raise ValueError("num_shards must be at least 1")
    if not 0 <= val_fraction < 1:
        raise ValueError("val_fraction must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """One raw source of a record set: a file or folder, and the split every clip of it goes
    to (``None``: the source's own split, else ``train``)."""

    path: str | os.PathLike
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        """``PATH`` or ``SPLIT=PATH`` (``train=../shared/data/xsigner/labelled_train_f16.npz``);
        a split name is lower-case letters, digits and ``_``."""
        name, sep, path = str(text).partition("=")
        if sep and name and all(c.islower() or c.isdigit() or c == "_" for c in name):
            if not path:
                raise ValueError(f"{text!r}: no path after {name}=; write SPLIT=PATH or PATH")
            return cls(path, name)
        return cls(text)


def _specs(src) -> list[SourceSpec]:
    """``src`` (one path, a :class:`SourceSpec`, or a list of either) as a list of specs."""
    items = src if isinstance(src, list | tuple) else [src]
    specs = [s if isinstance(s, SourceSpec) else SourceSpec(s) for s in items]
    if not specs:
        raise ValueError("no source to ingest")
    # Several sources' clip ids are prefixed with their file names: two of one name would
    # write the same ids twice.
    names = [os.path.basename(os.fspath(s.path)) for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1}) if len(specs) > 1 else []
    if twice:
        raise ValueError(
            f"two sources are named {twice[0]!r}; their clip ids would collide: give each "
            "source of one record set its own file name"
        )
    return specs


def _read_sources(
    reader: types.ModuleType, specs: list[SourceSpec], options: Mapping | None
) -> Iterable[Clip | Skipped]:
    """Every source's clips in order. Several sources each prefix their clip ids with their
    file name (ids are unique within a source only); a spec's split replaces the source's."""
    for spec in specs:
        for item in reader.read(spec.path, **(options or {})):
            if isinstance(item, Clip):
                changes = {}
                if len(specs) > 1:
                    changes["clip_id"] = f"{os.path.basename(os.fspath(spec.path))}/{item.clip_id}"
                if spec.split:
                    changes["split"] = spec.split
                item = dataclasses.replace(item, **changes) if changes else item
            yield item


def _shared_vocabulary(
    fmt: str, reader: types.ModuleType, specs: list[SourceSpec], replacements
) -> vocab_lib.Vocab:
    """The one vocabulary of the sources that hold labels (an unlabelled one has none);
    ``ValueError`` naming the source whose labels differ, or when none holds labels."""
    found = [(s.path, _vocabulary(fmt, reader, s.path, replacements)) for s in specs]
    labelled = [(path, vocab) for path, vocab in found if vocab is not None]
    if not labelled:
        raise ValueError(
            f"none of {[str(s.path) for s in specs]} holds labels; add a labelled source "
            "(a record set's vocabulary comes from its labels)"
        )
    first_path, vocab = labelled[0]
    for path, other in labelled[1:]:
        if other != vocab:
            raise ValueError(
                f"{path}: its labels differ from {first_path}'s; sources of one record set "
                "must share one vocabulary"
            )
    return vocab


def _vocabulary(
    fmt: str, reader: types.ModuleType, src, replacements: Mapping[str, str] | None
) -> vocab_lib.Vocab:
    """The source's vocabulary; only the fingerspelling format maps characters outside it."""
    if fmt == "kaggle-fingerspelling":
        return reader.vocabulary(src, replacements=dict(replacements or {}))
    return reader.vocabulary(src)


def _fresh_partial_folder(out: epath.Path) -> epath.Path:
    """Creates the hidden ``.<out>.partial-<pid>`` folder the set is written into, first
    deleting any that a killed ingest into the same output left behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        files.remove_tree(stale)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    partial.mkdir()
    return partial


@dataclasses.dataclass
class _Tally:
    """What ``metadata.json`` records of the clips an ingest went through.

    Attributes:
      aspect: the set's camera aspect, ``{"value": width / height or None, "from": where it
        came from}``; :func:`_in_set_aspect` fixes it from the first clip that records one.
      skipped: ``{"file", "reason", "clips"}`` of each skipped file or clip, in source order.
      labels_present: distinct labels written.
      frame_counts: frames of each written clip.
      label_lengths: label ids of each written clip.
      unlabelled: ``{split: clips written without a label}``.
    """

    aspect: dict
    skipped: list[dict] = dataclasses.field(default_factory=list)
    labels_present: set[str] = dataclasses.field(default_factory=set)
    frame_counts: list[int] = dataclasses.field(default_factory=list)
    label_lengths: list[int] = dataclasses.field(default_factory=list)
    unlabelled: dict[str, int] = dataclasses.field(default_factory=dict)


def _check_written(tally: _Tally, sources: str) -> None:
    """A ``ValueError`` when no clip was written: how many were skipped and why, the reasons
    grouped (numbers and bracketed details aside), most frequent first, each with an example."""
    if tally.frame_counts:
        return
    if not tally.skipped:
        raise ValueError(f"{sources}: no clip found; nothing was written")
    groups: dict[str, list] = {}
    for skip in tally.skipped:
        key = re.sub(r"\([^)]*\)|\[[^\]]*\]|\d+", "#", skip["reason"])
        group = groups.setdefault(key, [0, skip["reason"]])
        group[0] += skip["clips"]
    counted = sorted(groups.values(), key=lambda g: -g[0])
    shown = "; ".join(f"{clips} like: {example}" for clips, example in counted[:3])
    more = f"; and {len(counted) - 3} other reasons" if len(counted) > 3 else ""
    total = sum(clips for clips, _ in counted)
    raise ValueError(
        f"{sources}: every clip was skipped, {total} in all ({shown}{more}); nothing was written"
    )


def _write_clips(
    items: Iterable[Clip | Skipped],
    writers: _ShardWriters,
    *,
    vocab: vocab_lib.Vocab,
    selection: presets.Preset,
    val_fraction: float,
    camera_aspect: float | None,
    log: Callable[[str], None],
) -> _Tally:
    """Checks every clip and writes the usable ones, in source order, as records of the points
    of ``selection``; logs and counts the rest. Returns what the metadata needs of them."""
    source = "--camera-aspect" if camera_aspect else "default"
    tally = _Tally(aspect={"value": camera_aspect, "from": source})
    for item in items:
        if isinstance(item, Skipped):
            reason = item.reason
            file = item.file
        else:
            ids, reason = check_clip(item, vocab)
            file = item.source
        if reason is not None:
            lost = item.clips if isinstance(item, Skipped) else 1
            tally.skipped.append({"file": file, "reason": reason, "clips": lost})
            log(f"skipped {file}: {reason}")
            continue
        points = _in_set_aspect(item, tally.aspect)
        # Presets that pick the dominant hand judge it in true proportions: y times height / width.
        points = presets.select(
            points, selection, 1 / (tally.aspect["value"] or DEFAULT_CAMERA_ASPECT)
        )
        record = example.serialize(item.clip_id, points, item.label or "", ids)
        split = assign_split(item, val_fraction)
        writers.write(split, record)
        if not ids:
            tally.unlabelled[split] = tally.unlabelled.get(split, 0) + 1
        tally.frame_counts.append(item.num_frames)
        tally.label_lengths.append(len(ids))
        if item.label is not None:
            tally.labels_present.add(item.label)
    return tally


def _check_held_out(shards: Mapping[str, list], val_fraction: float, src) -> None:
    """Raises ValueError when ``val_fraction`` left no training split: a source with too few
    signers cannot hold some out, since whole signers move."""
    if val_fraction > 0 and "val" in shards and "train" not in shards:
        raise ValueError(
            f"--val-fraction {val_fraction} moved every training clip of {src} to val: "
            "its clips name too few signers to hold some out (it moves whole signers); "
            "ingest without --val-fraction and use the source's own split"
        )


def _build_metadata(
    tally: _Tally,
    shards: dict[str, list[dict]],
    *,
    fmt: str,
    src,
    selection: presets.Preset,
    vocab: vocab_lib.Vocab,
) -> dict:
    """The record set's ``metadata.json`` content (:func:`aslx.records.metadata.build`)."""
    return metadata.build(
        fmt=fmt,
        src=str(src),
        preset=selection,
        vocab=vocab,
        shards=shards,
        frame_counts=tally.frame_counts,
        label_lengths=tally.label_lengths,
        num_classes=len(tally.labels_present),
        skipped=tally.skipped,
        camera_aspect=tally.aspect["value"] or DEFAULT_CAMERA_ASPECT,
        camera_aspect_from=tally.aspect["from"],
        unlabelled=tally.unlabelled,
    )


def ingest(
    fmt: str,
    src: str | os.PathLike | SourceSpec | list,
    out: str | os.PathLike,
    *,
    preset: str = "full543",
    num_shards: int = DEFAULT_SHARDS,
    val_fraction: float = 0.0,
    replacements: Mapping[str, str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    reader_options: Mapping | None = None,
    camera_aspect: float | None = None,
) -> dict:
    """Reads a raw source and writes a record set. Returns its metadata.

    Args:
      fmt: a key of :data:`aslx.formats.READERS`.
      src: the source file or folder, or several (a list of paths or :class:`SourceSpec`, each
        with the split its clips go to), written into one record set: they must share one
        vocabulary (an unlabelled source adds clips without labels), and their clip ids are
        prefixed with their file names.
      out: the output folder; it must not exist unless ``overwrite``.
      preset: landmark selection stored in the records (:mod:`aslx.landmarks.presets`);
        ``full543`` keeps every point so the input pipeline can select any preset later.
      num_shards: shard files per split (fewer when a split has fewer clips). Training with
        R readers (``config.data.readers``, default one per process) needs at least R files
        in the training split; a multiple of R gives every reader the same share.
      val_fraction: share of the source's training signers moved to a ``val`` split.
      replacements: for character vocabularies, ``{char: replacement}`` for characters outside
        the vocabulary (``''`` drops them). Without one, such clips are skipped.
      reader_options: keyword arguments of the format's ``read`` (e.g. ``boundaries`` of the
        ``npz`` split, ``words`` of ``npz-spelled``).
      camera_aspect: the camera's width / height for clips whose format does not record it
        (``None``: :data:`~aslx.landmarks.normalize.DEFAULT_CAMERA_ASPECT`, Kaggle's portrait
        phones). Clips whose format records another aspect than the set's (the first clip's)
        have y rescaled into the set's, so one aspect holds for every record.
      overwrite: replace an existing output folder.
      progress: show a progress bar on stderr.
      log: where skip lines go (default: the progress bar's stderr).
    """
    _check_arguments(fmt, num_shards, val_fraction)
    specs = _specs(src)
    reader = READERS[fmt]
    out = files.path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    selection = presets.get(preset)
    vocab = _shared_vocabulary(fmt, reader, specs, replacements)
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))

    partial = _fresh_partial_folder(out)
    writers = _ShardWriters(partial, num_shards)
    try:
        items = _read_sources(reader, specs, reader_options)
        bar = tqdm(checked(items), desc=f"ingest {fmt}", unit=" clips", disable=not progress)
        tally = _write_clips(
            bar,
            writers,
            vocab=vocab,
            selection=selection,
            val_fraction=val_fraction,
            camera_aspect=camera_aspect,
            log=log,
        )
        shards = writers.close()
        sources = ", ".join(str(s.path) for s in specs)
        _check_written(tally, sources)
        _check_held_out(shards, val_fraction, sources)
        meta = _build_metadata(
            tally, shards, fmt=fmt, src=sources, selection=selection, vocab=vocab
        )
        (partial / metadata.FILE).write_text(json.dumps(meta, indent=1) + "\n")
        _replace_folder(partial, out)
    except BaseException:
        # Whatever failed (Ctrl-C included), leave no partial set behind.
        writers.abort()
        files.remove_tree(partial)
        raise
    return meta
