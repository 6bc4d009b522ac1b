"""Recognition under simulated shifts of one signer's recording: the isolated model scored on
shifted copies of the fixed test split of ``mp_holistic_35signs`` (another camera, a resting
hand, a mirrored image, another frame rate, a photo), with today's default preprocessing and
the per-group one it replaced, trained and scored side by side in one run.

These shifts are a guard against regressions, not a measure of new people: every shift here
stays within a few points of clean, yet the same model scores about half its accuracy on real
signers it never saw (``benchmarks/cross_signer.py``, the measure of that).

    python benchmarks/robustness.py --json runs/bench/robustness.json
    python benchmarks/robustness.py --smoke --json /tmp/robustness.json   # seconds: it runs

The models' recipes are ``configs/bench/robustness.py``; ``--smoke`` trains each two steps of
a one-block model on a few clips of each class (``benchmarks/harness.py``).

Both models are the ``real_data.py --task isolated`` recipe (``configs/isolated_tiny.py``,
3,000 steps, checkpoint chosen on val). The record set says its camera: bone lengths of this
webcam's hands are most constant with width / height :data:`SOURCE_ASPECT` (1.48, between 4:3
and 16:9), given to ingest as ``--camera-aspect``.

* ``default``: the library's defaults (body frame, groups divided by their size, resting-hand
  rule, the records' camera aspect) and the recipe's still-clip, resting-hand and
  camera-aspect augmentation and the stem's edge padding.
* ``baseline``: the preprocessing before them: per-group frame divided by each group's reach
  over the clip, no resting-hand rule, the portrait aspect for every camera, no still clips,
  resting hands or aspect jitter, and the stem's zero padding (the recipe's batch of 64).
* ``mask_channel``: the default with the detection mask as a channel (``data.mask_channel``),
  to decide on val whether it earns its place.

Shifts, each made from the test clips (``robustness_shifts.py``; a shifted set is ingested with
the camera it simulates, which the default model reads and the baseline ignores):

=================  ==========================================================================
resting_hand       a still hand from another test clip, scaled to this signer's shoulders, at
                   the bottom of the frame under the shoulder of the hand that does not sign
camera_16x9        the same scene through a 16:9 camera of the same height (a wider view)
camera_4x3         through a 4:3 camera of the same width (a taller view)
zoomed_out         the camera zoomed out to 60 % and moved off-centre
mirrored           the image mirrored (as a left-handed signer)
half_frame_rate    every other frame (15 instead of 30)
double_frame_rate  frames interpolated to twice the rate (59)
still (static)     one frame of each clip, the stillest (a photo of the held sign), scored on
                   the 24 letters held still (every letter but j and z)
still held         every frame of those clips where the hand is held (``held_frames``: at
(static)           most the clip's median motion), each a photo: some ten times more photos
                   than ``still``, so a steadier figure for comparing models
=================  ==========================================================================

JSON: ``clean_test_accuracy``, ``shift_<name>_test_accuracy`` per moving shift,
``clean_static_test_accuracy``, ``still_static_test_accuracy`` and
``still_held_static_test_accuracy``, each also prefixed
``baseline_`` and ``mask_channel_``; the same keys with ``_val_`` for the shifted copies of
the val clips, on which every choice (the recipe's probabilities, the resting-hand rule) is
made. Test is scored once per model and set; nothing is chosen on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

from aslx.decoding import evaluate as evaluate_lib  # noqa: E402
from aslx.formats import npz  # noqa: E402
from aslx.records import writer as ingest_lib  # noqa: E402
from aslx.records.metadata import RecordSet  # noqa: E402
from aslx.run import reader  # noqa: E402
from aslx.training import sharding  # noqa: E402
from benchmarks import harness, real_data  # noqa: E402
from benchmarks import robustness_shifts as shifts  # noqa: E402
from configs.bench import robustness as recipes  # noqa: E402

#: This webcam's width / height, where its hands' bone lengths vary least over each clip.
SOURCE_ASPECT = 1.48
#: The first clip number of each split's shifted copies (npz's fixed split).
SPLIT_FIRST_CLIP = {"val": 42, "test": 48}
MOVING_LETTERS = ("j", "z")
#: Sets whose JSON key is their name (every other one is a ``shift_``).
UNSHIFTED_KEYS = ("clean", "clean_static", "still_static", "still_held_static")


def shifted_sets(X: np.ndarray, y: np.ndarray, classes: np.ndarray) -> dict:
    """``{name: (X, y, camera aspect)}`` of the test clips under every shift."""
    rested, _ = shifts.resting_hand(X, X, np.random.default_rng(0))
    static = np.array(
        [len(str(classes[c])) == 1 and str(classes[c]) not in MOVING_LETTERS for c in y]
    )
    held, held_clip = shifts.held_frames(X[static])
    return {
        "clean": (X, y, SOURCE_ASPECT),
        "resting_hand": (rested, y, SOURCE_ASPECT),
        "camera_16x9": (shifts.reproject(X, SOURCE_ASPECT, 16 / 9), y, 16 / 9),
        "camera_4x3": (shifts.reproject(X, SOURCE_ASPECT, 4 / 3), y, 4 / 3),
        "zoomed_out": (shifts.zoom(X, 0.6, (0.15, 0.1)), y, SOURCE_ASPECT),
        "mirrored": (shifts.mirror(X), y, SOURCE_ASPECT),
        "half_frame_rate": (shifts.frame_rate(X, 0.5), y, SOURCE_ASPECT),
        "double_frame_rate": (shifts.frame_rate(X, 2), y, SOURCE_ASPECT),
        "clean_static": (X[static], y[static], SOURCE_ASPECT),
        "still_static": (shifts.still_frame(X[static]), y[static], SOURCE_ASPECT),
        "still_held_static": (held, y[static][held_clip], SOURCE_ASPECT),
    }


def write_set(name: str, split: str, X, y, classes, aspect: float, workdir: Path) -> Path:
    """One shifted set of ``split``'s clips as records (ingested once under ``workdir``)."""
    out = workdir / f"robustness_{split}_{name}"
    if not (out / "metadata.json").is_file():
        archive = workdir / f"robustness_{split}_{name}.npz"
        seq = np.full(len(y), SPLIT_FIRST_CLIP[split])
        np.savez(archive, X=X.astype(np.float32), y=y, classes=classes, seq_id=seq)
        ingest_lib.ingest(
            "npz",
            archive,
            out,
            preset="hands_pose",
            num_shards=1,
            overwrite=True,
            camera_aspect=aspect,
            progress=False,
        )
        archive.unlink()
    return out


class Scorer:
    """The model a run chose, loaded once, scored on record sets; a model that
    ``reads_camera`` normalises with each set's camera aspect (one compiled forward per
    aspect), the others with their own."""

    def __init__(self, workdir: Path, reads_camera: bool):
        self.model = reader.load_for_inference(workdir)
        self.reads_camera = reads_camera
        self.cameras: dict[float, reader.InferenceModel] = {}
        self.to_device = sharding.host_to_global(sharding.make_mesh(1))

    def for_camera(self, camera_aspect: float) -> reader.InferenceModel:
        """The model as it reads a set of ``camera_aspect``: with that camera when it
        ``reads_camera``, else as trained."""
        if not self.reads_camera:
            return self.model
        if camera_aspect not in self.cameras:
            self.cameras[camera_aspect] = self.model.with_camera(camera_aspect)
        return self.cameras[camera_aspect]

    def __call__(self, record_dir: Path, split: str) -> dict:
        """Top-1 on ``split`` of one record set, and how many of its clips are shorter than
        every training clip."""
        model = self.for_camera(RecordSet(record_dir).camera_aspect)
        return evaluate_lib.evaluate(
            model.forward,
            model.params,
            model.eval_batches(record_dir, split, 64),
            task=model.task,
            vocab=model.vocab,
            to_device=self.to_device,
            min_frames=(model.card.train_frames or {}).get("min", 0),
        )


def configs(record_dir: Path):
    """``{JSON prefix: (config, whether it reads the records' camera)}`` of the three models
    (``configs/bench/robustness.py``), each on ``record_dir``."""
    models = (("", "default", True), ("baseline_", "baseline", False))
    models += (("mask_channel_", "mask_channel", True),)
    return {
        prefix: (real_data.with_records(recipes.get_config(variant), record_dir), reads_camera)
        for prefix, variant, reads_camera in models
    }


def scores(args: argparse.Namespace) -> dict:
    """Trains (or reuses) each model of :func:`configs` under ``args.workdir`` and scores it on
    every shifted set: the JSON's fields."""
    args.workdir.mkdir(parents=True, exist_ok=True)
    records = args.workdir / "records_signs_camera"
    if not (records / "metadata.json").is_file():
        ingest_lib.ingest(
            "npz",
            args.data / "landmarks_f16.npz",
            records,
            preset="full543",
            num_shards=4,
            overwrite=True,
            camera_aspect=SOURCE_ASPECT,
            reader_options=smoke_subset(),
        )
    sets = {}
    with npz.open_archive(args.data / "landmarks_f16.npz") as archive:
        seq, classes = archive["seq_id"], archive["classes"]
        for split in SPLIT_FIRST_CLIP:
            boundaries = smoke_subset().get("boundaries", npz.SPLIT_BOUNDARIES)
            chosen = np.array([npz.split_of(int(s), boundaries) == split for s in seq])
            X = archive["X"][chosen].astype(np.float32)
            for name, (Xs, ys, aspect) in shifted_sets(X, archive["y"][chosen], classes).items():
                sets[split, name] = write_set(name, split, Xs, ys, classes, aspect, args.workdir)
    out: dict = {"source_camera_aspect": SOURCE_ASPECT}
    for prefix, (config, reads_camera) in configs(records).items():
        run_dir = args.workdir / f"robustness_isolated_{prefix or 'default_'}model"
        result = real_data.run(config, run_dir)
        out[f"{prefix}val_accuracy"] = result["val/top1"]
        score = Scorer(run_dir, reads_camera)
        for (split, name), record_dir in sets.items():
            key = name if name in UNSHIFTED_KEYS else f"shift_{name}"
            metrics = score(record_dir, split)
            out[f"{prefix}{key}_{split}_accuracy"] = float(metrics["top1"])
            if metrics.get("short_examples") and not prefix:
                out[f"{key}_{split}_short_clips"] = metrics["short_examples"]
    return out


def smoke_subset() -> dict:
    """The reader options of a ``--smoke`` run: the clips of ``real_data.SMOKE_SPLITS`` only
    (none otherwise)."""
    if not harness.smoke():
        return {}
    return {"boundaries": real_data.clip_boundaries(real_data.SMOKE_SPLITS)}


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    harness.add_data_arguments(parser)
    args = harness.parse_args(parser, argv)
    if harness.data_missing(args):
        return 2
    out = scores(args)
    variants = ("baseline_", "mask_channel_")
    names = [k for k in out if k.endswith("_test_accuracy") and not k.startswith(variants)]
    rows = []
    for k in names:
        v = k.replace("_test_", "_val_")
        cells = [f"{out[p + v]:.4f} / {out[p + k]:.4f}" for p in ("", *variants)]
        rows.append((k.removesuffix("_test_accuracy"), *cells))
    print()
    harness.print_table(("val / test top-1", "default", "baseline", "mask channel"), rows)
    harness.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
