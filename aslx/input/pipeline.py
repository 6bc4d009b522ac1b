"""Host input pipeline: record files -> padded NumPy batches, with tf.data on the CPU.

The host does only what must happen before the data has a static shape: decode, select the
preset's landmarks (choosing and mirroring the dominant hand), fit the clip into ``max_frames``,
pad, batch and prefetch. Normalisation and augmentation run later, on device, inside ``jit``.

A batch is a dict of NumPy arrays (``B`` = per-process batch size, ``T`` = ``max_frames``,
``L`` = landmarks of the preset, ``S`` = ``max_label_length``):

=================  ==================  ==========================================================
key                shape, dtype        meaning
=================  ==================  ==========================================================
landmarks          [B, T, L, 3] f32    x, y (image fractions) and z; 0 where the mask is 0
landmark_mask      [B, T, L] bool      point detected and frame real
frame_mask         [B, T] bool         frame real (not padding)
num_frames         [B] int32           real frames (after fitting into T)
labels             [B, S] int32        label ids, padded with ``vocab.LABEL_PAD`` (-1)
label_mask         [B, S] bool         label position real
example_mask       [B] bool            example real (evaluation pads its last batch)
clip_id            [B] bytes           the clip's id ('' for padding examples)
record_frames      [B] int32           frames stored in the record (before fitting into T)
alignment          [B, T] int32        training with ``InputConfig.alignments`` only: the label
                                       position each frame shows, -1 on blanks and padding
=================  ==================  ==========================================================

**Training streams are a pure function of (seed, step).** Epoch ``e`` of a process reads its
own shard files in an order drawn from ``(seed, e)``, shuffles records with a buffer seeded by
``(seed, e)``, and keeps a whole number of batches. So step ``k`` lies in epoch ``k // B`` at
batch ``k % B`` (``B`` batches per epoch, known from the shard counts in ``metadata.json``),
and :func:`train_batches` with ``start_step=k`` resumes exactly where a run stopped, skipping
at most one epoch of *serialized* records (no decoding) to get there.

**Length buckets.** With ``sort_window = W > 1`` the stream sorts each window of ``W``
consecutive batches (``W · B`` records, steps ``wW … wW + W − 1``) by clip length, cuts it into
``W`` batches of similar lengths and plays them in an order drawn from ``(seed, w)``; each step
still holds records of its own window only, so resume stays exact (start at the window, drop
the steps before ``start_step``). :func:`aslx.input.fit.bucket_length` and :func:`trim_frames`
then cut a batch to the smallest bucket bound that holds its longest clip, so the step runs on
a few static lengths instead of always ``max_frames`` (the training loop agrees on the length
across processes first). :func:`aslx.input.fit.parse_buckets` reads the bounds, and
:func:`aslx.input.fit.default_buckets` chooses them from the record set's frame counts.

**Processes** read disjoint shard files (process ``i`` of ``n`` takes shards ``i, i+n, …``), in
training and in evaluation alike, so no host reads another's files; every process yields the
same number of evaluation batches (padding after its own), so collective steps stay in
lockstep, even on a host that has no evaluation file at all.

**Alignments** (``InputConfig.alignments``, a file of ``python -m aslx.align``): per-frame label
positions for temporal CutMix, stored per *record* frame and fitted into ``T`` with the very
gather that fits the landmarks, so each fitted frame keeps the label it shows whatever
``max_frames`` or ``long_clips`` this run uses. Only training streams carry them (evaluation
has no use for them). The file must have been made for this record set and split (checked when
the stream is built, from its ``metadata.json`` fingerprint), and then holds every clip of it; a
clip the file lacks, or whose frame count or label length differs from its entry, stops
:func:`train_batches` with an error naming the clip rather than train CutMix on wrong spans.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import numpy as np

from aslx import files
from aslx import vocab as vocab_lib
from aslx.input import fit
from aslx.landmarks import normalize, presets
from aslx.records import alignments as alignments_lib
from aslx.records import example
from aslx.records.metadata import RecordSet
from aslx.tf_cpu import tensorflow

#: Kept here for the training config's choices; the rule is :mod:`aslx.input.fit`'s.
LONG_CLIP_POLICIES = fit.LONG_CLIP_POLICIES
#: Training batches sorted by length together when the trainer buckets (``data.bucket_window``).
DEFAULT_SORT_WINDOW = 8
#: ``alignment`` values the dataset gives every frame of a clip it cannot align (never reach a
#: batch of :func:`train_batches`, which raises instead): the file lacks the clip, or its entry
#: does not fit the record (frame count, label length).
ALIGNMENT_MISSING = -2
ALIGNMENT_MISMATCH = -3


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """What the host pipeline makes of a record set.

    Attributes:
      batch_size: examples per batch *per process*.
      max_frames: the static frame count ``T``; shorter clips are padded.
      max_label_length: the static label length ``S``; ``None`` takes the record set's longest.
      preset: landmark selection; ``None`` keeps the records' own.
      long_clips: clips longer than ``T``: ``resample`` keeps ``T`` evenly spaced frames (the
        whole phrase stays, so CTC labels stay valid); ``truncate`` keeps the first ``T``.
      shuffle_buffer: records in the shuffle buffer (training).
      seed: the stream's seed.
      cycle_length: shard files read at once (training).
      prefetch: batches prepared ahead.
      alignments: an alignments file of ``python -m aslx.align`` for this record set and the
        training split ('' none): training examples then carry ``alignment``.
      sort_window: training batches sorted by length together (1: no sorting); see the
        module docstring's "Length buckets".
      camera_aspect: the camera's width / height the dominant hand is judged in; ``None``
        takes the records' own.
    """

    batch_size: int
    max_frames: int
    max_label_length: int | None = None
    preset: str | None = None
    long_clips: str = fit.RESAMPLE
    shuffle_buffer: int = 1024
    seed: int = 0
    cycle_length: int = 8
    prefetch: int = 2
    alignments: str = ""
    sort_window: int = 1
    camera_aspect: float | None = None

    def __post_init__(self):
        fit.check_long_clips(self.long_clips)
        if self.batch_size < 1 or self.max_frames < 1 or self.sort_window < 1:
            raise ValueError("batch_size, max_frames and sort_window must be positive")


def _process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax

        process_index, process_count = jax.process_index(), jax.process_count()
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} outside [0, {process_count})")
    return process_index, process_count


class _AlignmentTable:
    """An alignments file as TensorFlow constants: clip id -> row, rows of per-record-frame
    label positions concatenated, and their offsets."""

    def __init__(self, path: str | os.PathLike, records: RecordSet, split: str):
        tf = tensorflow()
        alignments, meta = alignments_lib.read_file(path)
        alignments_lib.check_fits(meta, records.folder, split, path)
        ids = sorted(alignments)
        lengths = np.asarray([len(alignments[i]) for i in ids], np.int64)
        self.offsets = tf.constant(np.concatenate([[0], np.cumsum(lengths)]), tf.int64)
        values = [alignments[i] for i in ids] + [np.zeros(0, np.int32)]
        self.values = tf.constant(np.concatenate(values).astype(np.int32))
        self.rows = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([i.encode() for i in ids] or [b""], tf.string),
                tf.range(max(len(ids), 1), dtype=tf.int64),
            ),
            default_value=-1,
        )
        self.empty = not ids

    def lookup(self, tf, clip_id, frames, num_labels):
        """``[frames]`` int32: the clip's stored alignment, or a sentinel on every frame."""
        row = tf.constant(-1, tf.int64) if self.empty else self.rows.lookup(clip_id)
        start = self.offsets[tf.maximum(row, 0)]
        length = self.offsets[tf.maximum(row, 0) + 1] - start
        fits = (row >= 0) & (length == tf.cast(frames, tf.int64))

        def stored():
            values = self.values[start : start + length]
            in_label = tf.reduce_all(values < num_labels)
            return tf.where(in_label, values, ALIGNMENT_MISMATCH)

        def sentinel():
            code = tf.where(row >= 0, ALIGNMENT_MISMATCH, ALIGNMENT_MISSING)
            return tf.fill([frames], code)

        return tf.cond(fits, stored, sentinel)


class _Prepare:
    """The per-record transform: parse -> select -> fit to T -> mask -> pad."""

    def __init__(
        self, records: RecordSet, config: InputConfig, alignments: _AlignmentTable | None = None
    ):
        stored = records.preset
        self.preset = presets.get(config.preset) if config.preset else stored
        if self.preset.name != stored.name and stored.name != presets.FULL543.name:
            raise ValueError(
                f"{records.folder}: records hold the {stored.name} preset, which cannot give "
                f"{self.preset.name}; re-ingest with --preset full543 (or {self.preset.name})"
            )
        self.select = self.preset.name != stored.name
        self.y_scale = normalize.y_scale(config.camera_aspect or records.camera_aspect)
        self.num_stored = stored.num_landmarks
        longest = records.meta["max_label_length"]
        self.max_label_length = config.max_label_length or max(longest, 1)
        if self.max_label_length < longest:
            raise ValueError(
                f"max_label_length {self.max_label_length} is shorter than the longest label "
                f"({longest}) in {records.folder}; labels are never cut"
            )
        self.config = config
        self.alignments = alignments
        self.tf = tensorflow()

    def _select(self, tf, points):
        if not self.select:
            return points
        right = tf.gather(points, self.preset.indices, axis=1)
        if not self.preset.picks_dominant_hand:
            return right
        # The dominant hand's rule is NumPy on the host (one home with ingest and the graph).
        left_signs = tf.numpy_function(
            lambda p: np.bool_(presets.left_is_dominant(p, self.y_scale)), [points], tf.bool
        )
        left_signs.set_shape([])
        left = tf.gather(points, self.preset.mirrored_indices, axis=1)
        left = tf.concat([1.0 - left[..., :1], left[..., 1:]], axis=-1)
        return tf.cond(left_signs, lambda: left, lambda: right)

    def _fit(self, tf, points):
        frames = tf.shape(points)[0]
        limit, policy = self.config.max_frames, self.config.long_clips
        # Only a longer clip needs the gather; a shorter one is kept whole as it is.
        return tf.cond(
            frames > limit,
            lambda: tf.gather(points, fit.fit_indices(frames, limit, tf, policy)),
            lambda: points,
        )

    def __call__(self, serialized):
        tf = self.tf
        record = example.parse(serialized, self.num_stored)
        record_frames = tf.shape(record["landmarks"])[0]
        points = self._fit(tf, self._select(tf, record["landmarks"]))
        frames = tf.shape(points)[0]
        pad = self.config.max_frames - frames
        point_mask = tf.logical_not(tf.reduce_any(tf.math.is_nan(points), axis=-1))
        points = tf.where(point_mask[..., None], points, 0.0)
        ids = tf.cast(record["label_ids"], tf.int32)
        label_pad = self.max_label_length - tf.shape(ids)[0]
        num_landmarks = self.preset.num_landmarks
        extra = {}
        if self.alignments is not None:
            stored = self.alignments.lookup(tf, record["clip_id"], record_frames, tf.shape(ids)[0])
            # The landmarks' own gather (same frame count, same indices).
            fitted = self._fit(tf, stored)
            extra["alignment"] = tf.ensure_shape(
                tf.pad(fitted, [[0, pad]], constant_values=alignments_lib.NO_LABEL),
                [self.config.max_frames],
            )
        return extra | {
            "landmarks": tf.ensure_shape(
                tf.pad(points, [[0, pad], [0, 0], [0, 0]]),
                [self.config.max_frames, num_landmarks, 3],
            ),
            "landmark_mask": tf.ensure_shape(
                tf.pad(point_mask, [[0, pad], [0, 0]]), [self.config.max_frames, num_landmarks]
            ),
            "frame_mask": tf.sequence_mask(frames, self.config.max_frames),
            "num_frames": frames,
            "labels": tf.ensure_shape(
                tf.pad(ids, [[0, label_pad]], constant_values=vocab_lib.LABEL_PAD),
                [self.max_label_length],
            ),
            "label_mask": tf.sequence_mask(tf.shape(ids)[0], self.max_label_length),
            "example_mask": tf.constant(True),
            "clip_id": record["clip_id"],
            "record_frames": record_frames,
        }


def _options(tf):
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = True
    return options


def batches_per_epoch(
    records: RecordSet, split: str, batch_size: int, process_index: int, process_count: int
) -> int:
    """Training batches one process gets from one epoch of ``split``."""
    shards = records.shards(split)
    if len(shards) < process_count:
        raise ValueError(
            f"{records.folder}: split {split!r} has {len(shards)} shard files for "
            f"{process_count} readers (config.data.readers, default one per process), and each "
            f"reader needs its own; re-ingest with --shards {process_count} or a multiple of it"
        )
    mine = sum(n for _, n in shards[process_index::process_count])
    if mine < batch_size:
        raise ValueError(
            f"{records.folder}: process {process_index} has {mine} {split} examples, fewer than "
            f"one batch of {batch_size}"
        )
    return mine // batch_size


def _setup(records, config: InputConfig, process_index, process_count, split=None):
    """Opens the record set, resolves this process, builds the per-record transform (with the
    alignments of ``split`` when given and the config names a file)."""
    records = records if isinstance(records, RecordSet) else RecordSet(records)
    table = None
    if split is not None and config.alignments:
        table = _AlignmentTable(config.alignments, records, split)
    return records, *_process(process_index, process_count), _Prepare(records, config, table)


def check_alignments(
    path: str | os.PathLike, records: RecordSet | str | os.PathLike, split: str
) -> dict:
    """The provenance of alignments file ``path`` (see :mod:`aslx.records.alignments`), after
    checking that it was made for ``split`` of this record set; raises ``FileNotFoundError``
    or ``ValueError`` naming the fix otherwise. Cheap: reads only the file's header entry."""
    folder = records.folder if isinstance(records, RecordSet) else files.path(records)
    meta = alignments_lib.read_meta(path)
    alignments_lib.check_fits(meta, folder, split, path)
    return meta


def _map_prepare(tf, ds, prepare: _Prepare):
    # The transform builds its graph with explicit tf ops; AutoGraph has nothing to convert.
    return ds.map(
        tf.autograph.experimental.do_not_convert(prepare),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def train_dataset(
    records: RecordSet | str | os.PathLike,
    split: str,
    config: InputConfig,
    *,
    start_step: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
):
    """The endless training ``tf.data.Dataset`` of this process, starting at ``start_step``."""
    tf = tensorflow()
    records, process_index, process_count, prepare = _setup(
        records, config, process_index, process_count, split
    )
    per_epoch = batches_per_epoch(records, split, config.batch_size, process_index, process_count)
    files = tf.constant([p for p, _ in records.shards(split)[process_index::process_count]])
    records_per_epoch = per_epoch * config.batch_size
    # Sorted windows start the stream at the window of start_step and drop the steps before it.
    window = config.sort_window
    first_window, skip_steps = divmod(start_step, window)
    first_epoch, first_batch = divmod(first_window * window, per_epoch)
    seed = tf.constant(config.seed, tf.int64)

    def epoch(e):
        order = tf.argsort(tf.random.stateless_uniform([tf.size(files)], seed=tf.stack([seed, e])))
        ds = tf.data.Dataset.from_tensor_slices(tf.gather(files, order)).interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(config.cycle_length, int(files.shape[0])),
            block_length=1,
        )
        ds = ds.shuffle(
            config.shuffle_buffer, seed=seed * 1_000_003 + e, reshuffle_each_iteration=False
        )
        skip = tf.where(e == first_epoch, first_batch * config.batch_size, 0)
        return ds.take(records_per_epoch).skip(tf.cast(skip, tf.int64))

    epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max)
    ds = _map_prepare(tf, epochs.flat_map(tf.autograph.experimental.do_not_convert(epoch)), prepare)
    ds = ds.batch(config.batch_size, drop_remainder=True)
    if window > 1:
        ds = _sorted_windows(tf, ds, config, first_window)
    return ds.skip(skip_steps).prefetch(config.prefetch).with_options(_options(tf))


def _sorted_windows(tf, batches, config: InputConfig, first_window: int):
    """Batches → the same records, each window of ``sort_window`` batches sorted by length and
    cut into batches again, played in an order drawn from ``(seed, window)``."""
    window, size = config.sort_window, config.batch_size
    seed = tf.constant(config.seed, tf.int64) + WINDOW_SEED_OFFSET

    def sort_and_split(index, records):
        order = tf.argsort(records["num_frames"], stable=True)
        plays = tf.argsort(tf.random.stateless_uniform([window], seed=tf.stack([seed, index])))

        def regroup(x):
            x = tf.gather(x, order)
            x = tf.reshape(x, tf.concat([[window, size], tf.shape(x)[1:]], 0))
            return tf.gather(x, plays)

        return {k: regroup(v) for k, v in records.items()}

    windows = batches.unbatch().batch(window * size, drop_remainder=True)
    indices = tf.data.Dataset.range(first_window, np.iinfo(np.int64).max)
    sorted_windows = tf.data.Dataset.zip(indices, windows).map(
        tf.autograph.experimental.do_not_convert(sort_and_split)
    )
    return sorted_windows.unbatch()


#: Keeps the window orders' random stream apart from the epochs' file orders (both seeded
#: from ``config.seed`` and a small counter).
WINDOW_SEED_OFFSET = 1_000_000_007


#: Batch keys with a frame axis (second axis), cut by :func:`trim_frames`.
FRAME_KEYS = ("landmarks", "landmark_mask", "frame_mask", "alignment")


def trim_frames(batch: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """The batch with its frame axis cut to ``length`` (only padding may be cut)."""
    return {k: v[:, :length] if k in FRAME_KEYS else v for k, v in batch.items()}


def train_batches(
    records: RecordSet | str | os.PathLike,
    split: str,
    config: InputConfig,
    *,
    start_step: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Endless training batches (NumPy) of this process.

    Batch ``i`` of the iterator is global step ``start_step + i``. With
    ``config.alignments``, a clip the file cannot align raises ``ValueError`` naming it.
    """
    ds = train_dataset(
        records,
        split,
        config,
        start_step=start_step,
        process_index=process_index,
        process_count=process_count,
    )
    if not config.alignments:
        return ds.as_numpy_iterator()
    return _checked(ds.as_numpy_iterator(), config.alignments)


def _checked(batches, path) -> Iterator[dict[str, np.ndarray]]:
    for batch in batches:
        bad = (batch["alignment"] < alignments_lib.NO_LABEL).any(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            clip = batch["clip_id"][i].decode()
            if batch["alignment"][i].min() == ALIGNMENT_MISSING:
                why = "the file has no entry for it"
            else:
                why = "its entry does not fit the record (frame count or label length differs)"
            raise ValueError(
                f"{path}: cannot align clip {clip!r}: {why}; rerun python -m aslx.align on this "
                "record set"
            )
        yield batch


def eval_batches(
    records: RecordSet | str | os.PathLike,
    split: str,
    config: InputConfig,
    *,
    process_index: int | None = None,
    process_count: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """One pass over ``split``: process ``i`` of ``n`` reads only shard files ``i, i+n, …``,
    in record order.

    Every process yields the same number of batches (enough for the largest share, known
    from ``metadata.json``), so collective steps stay in lockstep; missing examples are
    padding with ``example_mask`` False and all other masks False. A process without a file
    (fewer files than processes) yields padding only, never nothing.
    """
    tf = tensorflow()
    records, process_index, process_count, prepare = _setup(
        records, config, process_index, process_count
    )
    shards = records.shards(split)
    shares = [sum(n for _, n in shards[p::process_count]) for p in range(process_count)]
    num_batches = -(-max(shares) // config.batch_size)
    files = [path for path, _ in shards[process_index::process_count]]
    ds = tf.data.TFRecordDataset(files if files else tf.constant([], tf.string))
    ds = _map_prepare(tf, ds, prepare)
    ds = ds.batch(config.batch_size).prefetch(config.prefetch).with_options(_options(tf))
    empty = {
        key: np.zeros((0, *spec.shape[1:]), spec.dtype.as_numpy_dtype)
        for key, spec in ds.element_spec.items()
    }
    produced = 0
    for batch in ds.as_numpy_iterator():
        produced += 1
        yield _pad_batch(batch, config.batch_size)
    for _ in range(num_batches - produced):
        yield _pad_batch(empty, config.batch_size)


def _pad_batch(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Pads a short batch to ``size`` examples: zeros, False masks, LABEL_PAD labels, ''."""
    missing = size - len(batch["example_mask"])
    if missing == 0:
        return batch
    out = {}
    for key, value in batch.items():
        if key in ("labels", "alignment"):
            fill = vocab_lib.LABEL_PAD
        else:
            fill = b"" if value.dtype.kind in "SO" else 0
        pad = np.full((missing, *value.shape[1:]), fill, dtype=value.dtype)
        out[key] = np.concatenate([value, pad])
    return out
