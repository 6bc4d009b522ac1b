"""The augmentation recipe: draw every transform's parameters from a key, apply them in order,
vectorised over the batch with one key per example, inside the jitted train step.

The default :class:`AugmentConfig` is the recipe of the 5th-place Kaggle fingerspelling
solution (constants in the design brief), run on device instead of in host worker processes,
after optional steps of signer and camera variation (off by default):

0. StillClip p ``still_clip_p`` (one real frame that shows a hand held still: half of them a
   single frame, a photo of a static sign, the rest a random length; classification only) ·
   RestingHand p ``resting_hand_p`` (a clip with one hand gets the other one resting at the
   bottom of the frame, the signing hand's shape mirrored and held still, moved by up to
   ``resting_hand_shift``) · BoneScale p ``bone_scale_p`` (every finger and palm bone of each
   hand lengthened by its own factor in ``1 ± bone_scale_limit``) · HandScale p
   ``hand_scale_p`` (each hand scaled about its wrist, ``1 ± hand_scale_limit``: hand size
   relative to the body) · CameraAspect p ``camera_aspect_p`` (raw y scaled by a factor up to
   ``1 ± camera_aspect_limit``, log-uniform: a camera of another width / height) · Reframe p
   ``reframe_p`` (zoom up to ``1 ± reframe_zoom``, log-uniform, and a shift up to
   ``reframe_shift``; points that leave the image are lost)
1. Normalize (after the y aspect correction; :mod:`aslx.landmarks.normalize`)
2. HorizontalFlip per group p .5 (left/right partner groups flip together)
3. TimeFlip p .5 (label reversed too) · RandomResample ±50 % p .5 · Truncate · AlignCTCLabel
4. FrameBlockMask per group: hands ratio .8, block 3, p .1; other groups ratio .1, block 3, p .25
5. FrameNoise ratio .1, σ .3, p .25 · FeatureMask ratio .1, p .1
6. Per group: RandomInterpolatedRotation (centre σ .2, angles ±π/4 about each axis, interpolated
   over time) p .5 · RandomShear ±.2 · RandomScale ±.2 · RandomShift σ .1
7. (Pad: shapes are static already.) Temporal CutMix (:mod:`aslx.augment.cutmix`) runs first,
   across the batch, when the batch carries alignments.

The flip runs earlier than in the original recipe (there it follows the noise): it commutes with
the time and masking steps and with isotropic noise, so the augmented distribution is the same,
and next to the normalisation it costs no extra pass over the batch (about 25 % faster on CPU).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from aslx.augment import cutmix as cutmix_lib
from aslx.augment import transforms
from aslx.landmarks import preprocess
from aslx.landmarks.normalize import Normalization
from aslx.landmarks.presets import Preset

SAMPLE_KEYS = ("landmarks", "landmark_mask", "frame_mask", "labels", "label_mask", "alignment")


@dataclasses.dataclass(frozen=True)
class BlockMask:
    """FrameBlockMask of one kind of group: ``ratio`` of frames hidden in blocks."""

    ratio: float
    block_size: int
    p: float

    def start_probability(self) -> float:
        """Per-frame probability of a block start so that about ``ratio`` of frames is covered:
        a frame is uncovered when none of the ``block_size`` frames up to it starts a block."""
        return 1 - (1 - self.ratio) ** (1 / self.block_size)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of every transform (defaults: the design brief's recipe)."""

    normalize: bool = True
    time_flip_p: float = 0.5
    resample_p: float = 0.5
    resample_limit: float = 0.5
    max_length: int | None = None
    align_ctc_label: bool = True
    hand_block_mask: BlockMask = BlockMask(ratio=0.8, block_size=3, p=0.1)
    other_block_mask: BlockMask = BlockMask(ratio=0.1, block_size=3, p=0.25)
    frame_noise_p: float = 0.25
    frame_noise_ratio: float = 0.1
    frame_noise_stdev: float = 0.3
    feature_mask_p: float = 0.1
    feature_mask_ratio: float = 0.1
    flip_p: float = 0.5
    rotation_p: float = 0.5
    rotation_centre_stdev: float = 0.2
    rotation_angle: float = math.pi / 4
    shear_limit: float = 0.2
    scale_limit: float = 0.2
    shift_stdev: float = 0.1
    cutmix_p: float = 0.5
    still_clip_p: float = 0.0
    camera_aspect_p: float = 0.0
    camera_aspect_limit: float = 0.25
    resting_hand_p: float = 0.0
    resting_hand_shift: float = 0.05
    bone_scale_p: float = 0.0
    bone_scale_limit: float = 0.15
    hand_scale_p: float = 0.0
    hand_scale_limit: float = 0.2
    reframe_p: float = 0.0
    reframe_zoom: float = 0.3
    reframe_shift: float = 0.1

    @classmethod
    def identity(cls, **overrides) -> AugmentConfig:
        """Every probability and range 0: the recipe leaves samples unchanged."""
        off = BlockMask(0.0, 1, 0.0)
        return cls(
            **(
                dict(
                    normalize=False,
                    time_flip_p=0.0,
                    resample_p=0.0,
                    resample_limit=0.0,
                    align_ctc_label=False,
                    hand_block_mask=off,
                    other_block_mask=off,
                    frame_noise_p=0.0,
                    feature_mask_p=0.0,
                    flip_p=0.0,
                    rotation_p=0.0,
                    shear_limit=0.0,
                    scale_limit=0.0,
                    shift_stdev=0.0,
                    cutmix_p=0.0,
                    still_clip_p=0.0,
                    camera_aspect_p=0.0,
                    resting_hand_p=0.0,
                    bone_scale_p=0.0,
                    hand_scale_p=0.0,
                    reframe_p=0.0,
                )
                | overrides
            )
        )

    def block_mask_of(self, group_name: str) -> BlockMask:
        return self.hand_block_mask if "hand" in group_name else self.other_block_mask


def noise_rows(config: AugmentConfig, frames: int) -> int:
    """Rows of FrameNoise noise drawn per sample: twice the expected number of noisy frames."""
    return max(1, math.ceil(2 * config.frame_noise_ratio * frames))


def draw(key: jax.Array, config: AugmentConfig, preset: Preset, frames: int) -> dict:
    """Every random parameter of one sample's recipe (a pure function of ``key``).

    A transform that is not applied gets neutral parameters (scale 1, nothing hidden, no
    flip …), so :func:`apply` runs every transform unconditionally.
    """
    g, lm = len(preset.groups), preset.num_landmarks
    k = iter(jax.random.split(key, 40))
    hands = len(transforms.hand_slices(preset))
    units = jnp.asarray(preset.flip_units())
    blocks = [config.block_mask_of(name) for name in preset.group_names]

    def uniform(key, limit, shape=()):
        return jax.random.uniform(key, shape, minval=-limit, maxval=limit)

    def happens(key, p, shape=()):
        return jax.random.bernoulli(key, p, shape)

    block_on = happens(next(k), jnp.asarray([b.p for b in blocks]), (g,))
    starts = happens(
        next(k), jnp.asarray([b.start_probability() for b in blocks])[:, None], (g, frames)
    )
    cover = jnp.stack(
        [transforms.block_cover(starts[i], b.block_size) for i, b in enumerate(blocks)]
    )
    hidden = jnp.repeat(
        cover & block_on[:, None], jnp.asarray(preset.group_sizes), axis=0, total_repeat_length=lm
    ).T  # [T, L]
    return {
        "time_flip": happens(next(k), config.time_flip_p),
        "resample_scale": jnp.where(
            happens(next(k), config.resample_p), 1 + uniform(next(k), config.resample_limit), 1.0
        ),
        "hidden": hidden,
        "noise_frames": happens(next(k), config.frame_noise_p)
        & happens(next(k), config.frame_noise_ratio, (frames,)),
        "noise": jax.random.normal(next(k), (noise_rows(config, frames), lm, 3)),
        "dropped": happens(next(k), config.feature_mask_p)
        & happens(next(k), config.feature_mask_ratio, (lm,)),
        "flip": happens(next(k), config.flip_p, (g,))[units],
        "rotate": happens(next(k), config.rotation_p, (g,)),
        "angles": uniform(next(k), config.rotation_angle, (g, 2, 3)),
        "centres": config.rotation_centre_stdev * jax.random.normal(next(k), (g, 2, 3)),
        "shear": uniform(next(k), config.shear_limit, (g, 2)),
        "scale": 1 + uniform(next(k), config.scale_limit, (g, 1)),
        "shift": config.shift_stdev * jax.random.normal(next(k), (g, 3)),
        "still": happens(next(k), config.still_clip_p),
        "still_frame": jax.random.uniform(next(k)),
        # Half the still clips are a single frame (a photo), the rest held for a random length.
        "still_length": jnp.where(happens(next(k), 0.5), 0.0, jax.random.uniform(next(k))),
        "resting_hand": happens(next(k), config.resting_hand_p),
        "resting_frame": jax.random.uniform(next(k)),
        "resting_offset": uniform(next(k), config.resting_hand_shift, (2,)),
        "bones": jnp.where(
            happens(next(k), config.bone_scale_p),
            1 + uniform(next(k), config.bone_scale_limit, (hands, len(transforms.HAND_BONES))),
            1.0,
        ),
        "hand_size": jnp.where(
            happens(next(k), config.hand_scale_p),
            1 + uniform(next(k), config.hand_scale_limit, (hands,)),
            1.0,
        ),
        **_reframing(next(k), next(k), next(k), config),
        "y_factor": jnp.where(
            happens(next(k), config.camera_aspect_p),
            jnp.exp(uniform(next(k), math.log1p(config.camera_aspect_limit))),
            1.0,
        ),
    }


def _reframing(on_key, zoom_key, shift_key, config: AugmentConfig) -> dict:
    """Reframe's zoom and shift: both drawn when it happens, neutral (1 and 0) together
    otherwise."""
    on = jax.random.bernoulli(on_key, config.reframe_p)
    limit = math.log1p(config.reframe_zoom)
    zoom = jnp.exp(jax.random.uniform(zoom_key, minval=-limit, maxval=limit))
    shift = jax.random.uniform(
        shift_key, (2,), minval=-config.reframe_shift, maxval=config.reframe_shift
    )
    return {"zoom": jnp.where(on, zoom, 1.0), "frame_shift": jnp.where(on, shift, 0.0)}


def apply(
    sample: transforms.Sample,
    params: dict,
    config: AugmentConfig,
    preset: Preset,
    normalization: Normalization | None = None,
) -> transforms.Sample:
    """Applies the recipe with drawn ``params`` to one sample (deterministic)."""
    # Signer and camera variation first, on raw image coordinates: normalisation (and its
    # resting-hand rule) must see them as it would see a real clip.
    if config.still_clip_p > 0:
        sample = transforms.still_clip(
            sample,
            params["still"],
            params["still_frame"],
            params["still_length"],
            transforms.hand_slices(preset),
        )
    if config.resting_hand_p > 0:
        sample = transforms.insert_resting_hand(
            sample,
            preset,
            params["resting_hand"],
            params["resting_frame"],
            params["resting_offset"],
        )
    if config.bone_scale_p > 0:
        sample = transforms.scale_bones(sample, preset, params["bones"])
    if config.hand_scale_p > 0:
        sample = transforms.scale_hands(sample, preset, params["hand_size"])
    if config.camera_aspect_p > 0:
        sample = transforms.camera_aspect_jitter(sample, params["y_factor"])
    if config.reframe_p > 0:
        sample = transforms.reframe(sample, params["zoom"], params["frame_shift"])
    if config.normalize:
        sample = preprocess.normalize(sample, preset, normalization)
    sample = transforms.horizontal_flip(
        sample,
        params["flip"],
        preset.mirror_permutation(),
        preset.group_ids,
        preset.group_mirror_permutation(),
    )
    sample = transforms.resample(sample, params["resample_scale"], params["time_flip"])
    if config.max_length is not None:
        sample = transforms.truncate(sample, config.max_length)
    if config.align_ctc_label:
        sample = transforms.align_ctc_label(sample)
    sample = transforms.frame_block_mask(sample, params["hidden"])
    sample = transforms.frame_noise(
        sample, params["noise_frames"], params["noise"], config.frame_noise_stdev
    )
    sample = transforms.feature_mask(sample, params["dropped"])
    return transforms.spatial(
        sample,
        preset.group_sizes,
        params["rotate"],
        params["angles"],
        params["centres"],
        params["shear"],
        params["scale"],
        params["shift"],
    )


def augment_batch(
    key: jax.Array,
    batch: dict,
    config: AugmentConfig,
    preset: Preset,
    normalization: Normalization | None = None,
) -> dict:
    """Augments a batch (``[B, …]`` arrays as the input pipeline yields them), one key per
    example; call it inside the jitted train step. Keys other than the sample's pass through.
    ``landmarks`` comes back as the model's input, ``[B, T, L, C]``
    (:func:`aslx.landmarks.normalize.model_input`)."""
    normalization = normalization or Normalization.per_group()
    cut_key, sample_key = jax.random.split(key)
    if config.cutmix_p > 0 and "alignment" in batch:
        batch = batch | cutmix_lib.cutmix(cut_key, batch, config.cutmix_p)
    sample = {k: batch[k] for k in SAMPLE_KEYS if k in batch}
    frames = batch["frame_mask"].shape[1]
    keys = jax.random.split(sample_key, batch["frame_mask"].shape[0])

    def one(key, sample):
        params = draw(key, config, preset, frames)
        augmented = apply(sample, params, config, preset, normalization)
        return augmented | {"landmarks": preprocess.model_input(augmented, preset, normalization)}

    augmented = jax.vmap(one)(keys, sample)
    augmented.pop("placement", None)
    return batch | augmented


def prepare_batch(
    key: jax.Array,
    batch: dict,
    config: AugmentConfig | None,
    preset: Preset,
    normalization: Normalization | None = None,
) -> dict:
    """The train step's view of a batch: the whole recipe, or only normalisation when
    ``config`` is ``None`` (augmentation off)."""
    if config is None:
        return preprocess.normalize_batch(batch, preset, normalization)
    return augment_batch(key, batch, config, preset, normalization)
