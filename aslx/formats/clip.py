"""What every reader yields: one clip of landmarks in the canonical layout, or a reason to skip."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np

from aslx.landmarks import layouts


@dataclasses.dataclass(frozen=True)
class Clip:
    """One recorded sign or phrase.

    Attributes:
      clip_id: unique, stable identifier within its source (``'<file_id>/<sequence_id>'``,
        ``'<label>/<clip>'`` …). Record order and splits derive from it.
      landmarks: ``[frames, 543, 3]`` float32, canonical layout
        (:mod:`aslx.landmarks.layouts`), coordinates normalised by image width and height, NaN
        where a point was not detected.
      label: the phrase (fingerspelling), the gloss or class name, or ``None`` if unlabelled.
      source: the file the clip came from, as shown in messages.
      split: split the source assigns (``'train'``, ``'val'``, ``'test'``, ``'supplemental'``);
        ``None`` lets ingest decide.
      group: who recorded it (participant / signer id), used to hold out whole signers.
      camera_aspect: the camera's width / height when the format records it (``.pose``
        headers), else ``None`` (ingest then uses ``--camera-aspect`` or the portrait default).
    """

    clip_id: str
    landmarks: np.ndarray
    label: str | None
    source: str
    split: str | None = None
    group: str | None = None
    camera_aspect: float | None = None

    def __post_init__(self):
        shape = self.landmarks.shape
        if len(shape) != 3 or shape[1:] != (layouts.NUM_LANDMARKS, 3):
            raise ValueError(
                f"{self.source}: clip {self.clip_id} has landmarks of shape {shape}, "
                f"expected [frames, {layouts.NUM_LANDMARKS}, 3]"
            )

    @property
    def num_frames(self) -> int:
        return int(self.landmarks.shape[0])


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An input a reader could not turn into clips: ``file`` (and clip), a one-line reason, and
    how many clips were lost with it."""

    file: str
    reason: str
    clips: int = 1

    def __str__(self) -> str:
        return f"skipped {self.file}: {self.reason}"


class FormatError(ValueError):
    """Raised when a whole source cannot be read (missing index file, wrong columns …)."""


#: The largest magnitude of x and y a clip may hold, in image widths and heights, and of z.
#: MediaPipe puts points it guesses outside the image at most a few sizes away; pose-format
#: files keep z in the recorder's own units (hundreds on real files). A flipped byte in a
#: float gives 1e4 … 1e38 or an infinity.
MAX_COORDINATE = (100.0, 100.0, 1e5)


def coordinate_problem(landmarks: np.ndarray) -> str | None:
    """Why ``landmarks [frames, 543, 3]`` cannot be real MediaPipe output (an infinity, or a
    coordinate beyond :data:`MAX_COORDINATE`), or ``None``. NaN is a missing point, not a
    problem."""
    with np.errstate(invalid="ignore"):
        bad = np.isinf(landmarks) | (np.abs(landmarks) > np.asarray(MAX_COORDINATE))
    if not bad.any():
        return None
    frame, point, _ = np.argwhere(bad)[0]
    return (
        f"{int(bad.sum()):,} coordinates are infinite or absurdly large (beyond "
        f"{MAX_COORDINATE[0]:g} image sizes; first: frame {frame}, landmark {point}, "
        f"{landmarks[frame, point].tolist()}); the file is damaged"
    )


def checked(items: Iterable[Clip | Skipped]) -> Iterator[Clip | Skipped]:
    """A reader's items with every clip whose coordinates are damaged
    (:func:`coordinate_problem`) turned into a :class:`Skipped` naming it: every consumer of
    a reader (ingest, predict, calibration) refuses such clips alike."""
    for item in items:
        if isinstance(item, Clip):
            problem = coordinate_problem(item.landmarks)
            if problem is not None:
                where = (
                    item.source
                    if item.source.endswith(item.clip_id)
                    else (f"{item.source} (clip {item.clip_id})")
                )
                yield Skipped(where, problem)
                continue
        yield item
