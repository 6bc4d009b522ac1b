"""Synthetic fingerspelling clips: procedurally generated landmarks, **not real data**.

``make demo`` and the tests need fingerspelling data that goes through the real ingest path
without downloading anything, so this package draws MediaPipe-Holistic-like landmark sequences
of made-up signers spelling made-up phrases, and writes them in the Kaggle asl-fingerspelling
layout (:func:`aslx.formats.kaggle_fingerspelling.write`). A model can learn to read them, but
not trivially: letters whose handshapes are close in ASL (a/e/m/n/s/t, u/v/r, g/h, i/j …) are
close here too, and the noise makes them confusable.

How a clip is made:

* **Hand.** A 21-point hand with MediaPipe's topology (:data:`~aslx.landmarks.layouts.HAND_BONES`)
  built by forward kinematics from 21 joint angles (per finger MCP flexion and abduction, PIP and
  DIP flexion; thumb CMC radial and palmar abduction, CMC twist, MCP and IP flexion) and a wrist
  orientation. Bone lengths are those of an adult hand (wrist → middle MCP 8.5 cm), scaled per
  signer.
* **Letters.** A hand-written table of joint angles and wrist orientations loosely following
  the ASL manual alphabet (:func:`letter_shape`); j and z add their wrist trajectories; a space
  is a short pause with the hand relaxed and lowered.
* **Signer and clip variation.** Hand size, body size, signing speed, handedness (about one
  signer in five signs with the left hand, so the hand lands in the ``left_hand`` columns,
  mirrored), each signer's own habitual version of every letter, and per-letter-instance joint
  jitter. Letters are held for a few frames and joined by eased transitions; the wrist drifts
  and sways; a random camera rotation, translation and scale applies to every point; every point
  gets Gaussian detection jitter; the signing hand is not detected in short runs of frames; the
  resting hand is sometimes detected.
* **Body.** All 33 pose points of an upper body facing the camera (legs below the image, y > 1,
  as MediaPipe reports them), the signing arm following the hand.
* **Face.** Only the 40 lip points (:data:`~aslx.landmarks.layouts.LIPS`) are generated, as a
  slightly moving mouth attached to the head. There is no face-mesh model here, so every other
  face point is NaN ("not detected"); models that use the lips and hands see the usual inputs.

Geometry is made in a metric body frame (metres; x toward the image right, y down, z away from
the camera; origin between the shoulders) and projected orthographically onto a portrait image
(width / height = :data:`IMAGE_ASPECT`): ``x = X / width_m``, ``y = Y / height_m`` with
``height_m = width_m / IMAGE_ASPECT``. As in MediaPipe, z is relative depth in x's units, taken
from the wrist for hands, the hip midpoint for the pose and the head centre for the lips.

Run ``python -m aslx.synthetic --out DIR`` to write a synthetic data set. The package's
modules follow the making: :mod:`~aslx.synthetic.hand` (kinematics and the alphabet),
:mod:`~aslx.synthetic.scene` (signers, timing, one clip) and :mod:`~aslx.synthetic.dataset`
(phrases, the written data set).
"""

from aslx.synthetic.dataset import (
    FIRST_SEQUENCE_ID,
    MAX_PHRASE_LENGTH,
    WORDS,
    Summary,
    generate,
    random_phrase,
    record_set,
    synthetic_phrases,
)
from aslx.synthetic.hand import letter_shape
from aslx.synthetic.scene import (
    IMAGE_ASPECT,
    MAX_FRAMES,
    MIN_FRAMES,
    PHRASE_CHARACTERS,
    Signer,
    make_clip,
    make_signer,
)

__all__ = [
    "FIRST_SEQUENCE_ID",
    "IMAGE_ASPECT",
    "MAX_FRAMES",
    "MAX_PHRASE_LENGTH",
    "MIN_FRAMES",
    "PHRASE_CHARACTERS",
    "WORDS",
    "Signer",
    "Summary",
    "generate",
    "letter_shape",
    "make_clip",
    "make_signer",
    "random_phrase",
    "record_set",
    "synthetic_phrases",
]
