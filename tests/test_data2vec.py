"""Data2vec 2.0 pieces: masks, gather/scatter, instance-normalised targets, the frozen teacher
and its EMA schedule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.landmarks import presets
from aslx.model import config as model_config_lib
from aslx.model.paths import flatten
from aslx.objectives import data2vec
from aslx.training import step as step_lib

PRESET = presets.get("hands_pose")
D2V = data2vec.Data2vecConfig(num_masks=3, top_k=2, decoder_layers=2, decoder_dim=32)
MODEL = model_config_lib.sized(
    "tiny", num_landmarks=PRESET.num_landmarks, ctc_vocab=0, dropout=0.0, layer_drop=0.0
)


# One compiled program per shape is far cheaper than running the ops one by one.
MASKS = jax.jit(data2vec.inverse_block_mask, static_argnums=(1, 2, 3, 4))


def runs(row: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean array."""
    lengths, current = [], 0
    for value in row:
        if value:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths + ([current] if current else [])


@settings(max_examples=25, deadline=None)
@given(
    frames=st.integers(8, 200),
    ratio=st.sampled_from([0.3, 0.5, 0.7]),
    block=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_masks_keep_whole_blocks_and_the_same_count_in_every_row(frames, ratio, block, seed):
    """Every row keeps K frames, K a whole number of blocks near (1 − R)·T, and every run of
    kept frames is whole blocks side by side: no block is cut into single frames."""
    visible, hidden = MASKS(jax.random.key(seed), 6, frames, ratio, block)
    visible, hidden = np.asarray(visible), np.asarray(hidden)
    kept = data2vec.num_visible(frames, ratio, block)
    blocks, length = data2vec.mask_blocks(frames, ratio, block)
    assert kept == blocks * length and length == min(block, frames)
    if round((frames - round(ratio * frames)) / length) >= 1:
        assert abs(kept - (1 - ratio) * frames) <= length / 2 + 1
    else:  # fewer frames to keep than half a block: the rule keeps one whole block
        assert blocks == 1
    assert visible.shape == (6, kept) and (hidden.sum(-1) == frames - kept).all()
    assert (np.diff(visible, axis=-1) > 0).all()  # sorted, distinct
    for row_visible, row_hidden in zip(visible, hidden):
        assert not row_hidden[row_visible].any()
        assert all(n % length == 0 for n in runs(~row_hidden)), runs(~row_hidden)


def test_masks_at_the_pretraining_length_keep_blocks_whole_and_spread_them():
    """At 32 frames, R = .5, blocks of 5: three blocks (15 frames) in every row, every kept run
    5, 10 or 15 frames long; every frame is kept in some rows and hidden in others, about as
    often as the ratio says (the edges a little less: fewer placements cover them)."""
    frames, block = 32, 5
    visible, hidden = data2vec.inverse_block_mask(jax.random.key(0), 4000, frames, 0.5, block)
    kept = ~np.asarray(hidden)
    assert np.asarray(visible).shape == (4000, 15)
    assert {n for row in kept for n in runs(row)} <= {5, 10, 15}
    share = kept.mean(0)
    assert share.min() > 0.1 and abs(share[5:-5].mean() - 15 / 32) < 0.05


def test_gather_then_scatter_is_the_identity_on_kept_frames():
    x = jax.random.normal(jax.random.key(1), (4, 20, 7))
    visible, hidden = data2vec.inverse_block_mask(jax.random.key(2), 4, 20, 0.5, 3)
    gathered = data2vec.gather_frames(x, visible)
    assert gathered.shape == (4, data2vec.num_visible(20, 0.5, 3), 7) == (4, 9, 7)
    back = np.asarray(data2vec.scatter_frames(gathered, visible, jnp.zeros_like(x)))
    kept = ~np.asarray(hidden)
    np.testing.assert_array_equal(back[kept], np.asarray(x)[kept])
    assert (back[~kept] == 0).all()
    # 2-D inputs (frame masks) gather the same way
    mask = jnp.arange(20)[None].repeat(4, 0) < 15
    np.testing.assert_array_equal(
        data2vec.gather_frames(mask, visible), np.asarray(mask)[0][np.asarray(visible)]
    )


def test_instance_norm_gives_zero_mean_unit_variance_over_real_frames():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 5.0, size=(3, 16, 6)).astype(np.float32)
    frame_mask = np.arange(16)[None] < np.array([[16], [9], [4]])
    out = np.asarray(data2vec.instance_norm(jnp.asarray(x), jnp.asarray(frame_mask)))
    for i, n in enumerate((16, 9, 4)):
        real = out[i, :n]
        np.testing.assert_allclose(real.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(real.var(0), 1, rtol=1e-3)
        reference = (x[i, :n] - x[i, :n].mean(0)) / np.sqrt(x[i, :n].var(0) + 1e-5)
        np.testing.assert_allclose(real, reference, rtol=1e-4, atol=1e-5)
        assert (out[i, n:] == 0).all()


def test_targets_average_the_normalised_blocks():
    rng = np.random.default_rng(1)
    blocks = rng.normal(size=(3, 2, 10, 4)).astype(np.float32)
    frame_mask = np.ones((2, 10), bool)
    expected = np.mean(
        [(b - b.mean(1, keepdims=True)) / np.sqrt(b.var(1, keepdims=True) + 1e-5) for b in blocks],
        axis=0,
    )
    np.testing.assert_allclose(
        data2vec.targets(jnp.asarray(blocks), jnp.asarray(frame_mask)), expected, atol=1e-5
    )


def test_block_outputs_are_the_residual_stream_or_the_mlp_output_before_it():
    from flax import nnx

    from aslx.model.encoder import Encoder

    encoder = Encoder(MODEL, nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (2, 8, PRESET.num_landmarks, 3))
    mask = jnp.ones((2, 8), bool)
    positions = jnp.broadcast_to(jnp.arange(8), (2, 8))
    features, stream = encoder(x, mask, positions, block_outputs=2, block_output_kind="residual")
    assert stream.shape == (2, 2, 8, MODEL.dim)
    np.testing.assert_allclose(encoder.final_norm(stream[-1]), features, atol=1e-6)
    np.testing.assert_array_equal(encoder(x, mask, positions), features)

    # Data2vec's targets: the last block's MLP output, recomputed by hand from its input.
    _, mlp_outputs = encoder(x, mask, positions, block_outputs=2)
    last = encoder.block(-1)
    lengths = mask.sum(-1)
    middle = stream[0] + last.attention(last.attention_norm(stream[0]), positions, lengths)
    expected = last.mlp_out(jax.nn.gelu(last.mlp_in(last.mlp_norm(middle))))
    np.testing.assert_allclose(mlp_outputs[-1], expected, atol=1e-5)
    np.testing.assert_allclose(middle + mlp_outputs[-1], stream[-1], atol=1e-5)
    with pytest.raises(ValueError, match="block_output_kind"):
        encoder(x, mask, positions, block_outputs=1, block_output_kind="attention")


def test_the_student_runs_the_stem_on_the_whole_clip_with_hidden_frames_zeroed():
    """Slow reference: the stem's convolution written out over the zero-filled full clip, at
    the visible frames. A hidden frame's points change nothing the student computes, and a
    visible frame beside a gap sees zeros there, not the next visible frame (as a stem run on
    the gathered frames would)."""
    from aslx.model.encoder import Encoder

    encoder = Encoder(MODEL, nnx.Rngs(0))
    t, k = 12, MODEL.conv_kernel
    x = jax.random.normal(jax.random.key(3), (1, t, PRESET.num_landmarks, 3))
    mask = jnp.ones((1, t), bool)
    visible = jnp.asarray([[0, 1, 2, 6, 7, 8]])
    hidden = jnp.ones((1, t), bool).at[0, visible[0]].set(False)

    stem = encoder.embed(x * ~hidden[..., None, None], mask)
    zeroed = np.where(np.asarray(hidden)[0, :, None], 0.0, np.asarray(x)[0].reshape(t, -1))
    padded = np.concatenate(
        [np.zeros((1, zeroed.shape[1])), zeroed, np.zeros((1, zeroed.shape[1]))]
    )
    kernel, bias = np.asarray(encoder.stem.kernel.value), np.asarray(encoder.stem.bias.value)
    reference = np.stack(
        [sum(padded[i + j] @ kernel[j] for j in range(k)) + bias for i in np.asarray(visible[0])]
    )
    np.testing.assert_allclose(data2vec.gather_frames(stem, visible)[0], reference, atol=1e-4)

    features = data2vec.student_features(encoder, x, mask, visible, hidden, None)
    changed = x.at[:, np.asarray(hidden[0])].set(7.0)
    np.testing.assert_allclose(
        data2vec.student_features(encoder, changed, mask, visible, hidden, None), features
    )
    gathered = data2vec.gather_frames(x, visible)  # frame 2 next to frame 6: a straddling window
    straddling = encoder.embed(gathered, jnp.ones((1, 6), bool))
    assert not np.allclose(straddling[0, 2], reference[2], atol=1e-3)
    np.testing.assert_allclose(straddling[0, 1], reference[1], atol=1e-4)  # inside a block


def test_input_and_attention_dropout_act_in_training_only():
    """``model.input_dropout`` and ``model.attention_dropout`` change a training pass, each on
    its own, and leave evaluation (no key) exactly as without them."""
    import dataclasses

    from aslx.model.encoder import Encoder

    x = jax.random.normal(jax.random.key(4), (2, 10, PRESET.num_landmarks, 3))
    mask = jnp.arange(10)[None] < jnp.asarray([[10], [6]])
    positions = jnp.broadcast_to(jnp.arange(10), (2, 10))
    plain = Encoder(MODEL, nnx.Rngs(0))
    key = jax.random.key(5)
    reference = plain(x, mask, positions, key=key)
    for field in ("input_dropout", "attention_dropout"):
        encoder = Encoder(dataclasses.replace(MODEL, **{field: 0.3}), nnx.Rngs(0))
        np.testing.assert_allclose(encoder(x, mask, positions), plain(x, mask, positions))
        trained = encoder(x, mask, positions, key=key)
        assert np.isfinite(trained).all()
        assert not np.allclose(trained, reference, atol=1e-3), field
    with pytest.raises(ValueError, match="attention_dropout must be in"):
        dataclasses.replace(MODEL, attention_dropout=1.0)


def batch(b=2, t=24, seed=0):
    rng = np.random.default_rng(seed)
    frame_mask = np.arange(t)[None] < np.array([[t], [t - 7]])
    landmark_mask = frame_mask[..., None] & (rng.random((b, t, PRESET.num_landmarks)) > 0.1)
    points = rng.uniform(0.2, 0.8, (b, t, PRESET.num_landmarks, 3)).astype(np.float32)
    return {
        "landmarks": np.where(landmark_mask[..., None], points, 0).astype(np.float32),
        "landmark_mask": landmark_mask,
        "frame_mask": frame_mask,
    }


def test_the_decoder_is_data2vec_2s_light_grouped_stack():
    config = data2vec.Data2vecConfig()  # 4 blocks, 256 wide, kernel 7, 16 groups
    assert (config.decoder_groups, config.decoder_input_dropout) == (16, 0.1)
    dim = model_config_lib.sized("small").dim
    decoder = data2vec.Decoder(dim, config, nnx.Rngs(0))
    shapes = {k: v.shape for k, v in flatten(nnx.state(decoder, nnx.Param)).items()}
    # each convolution sees 256 / 16 = 16 channels of its group; the norms have no parameters
    assert shapes["convs/0/kernel"] == (7, dim // 16, 256) and shapes["convs/0/bias"] == (256,)
    assert not any(k.startswith("norms") for k in shapes)
    conv = 4 * (7 * 16 * 256 + 256)
    assert data2vec.decoder_params(config, dim) == conv + 256 * dim + dim <= 1.0e6
    x = jax.random.normal(jax.random.key(0), (3, 20, dim))
    mask = jnp.arange(20)[None] < jnp.asarray([[20], [11], [5]])
    assert decoder(x, mask).shape == (3, 20, dim)
    with pytest.raises(ValueError, match="groups"):
        data2vec.Data2vecConfig(decoder_dim=100)


def test_the_teacher_gets_no_gradient_and_the_student_does():
    graphdef, params = data2vec.create(MODEL, D2V)
    loss_fn = data2vec.make_loss(graphdef, D2V, PRESET, None)
    teacher = data2vec.teacher_part(jax.tree.map(lambda x: x + 0.01, params))
    grad_fn = jax.value_and_grad(
        lambda p, t, b: loss_fn(p, b, jax.random.key(0), 0, t), argnums=(0, 1), has_aux=True
    )
    (loss, aux), (g_student, g_teacher) = jax.jit(grad_fn)(params, teacher, batch())
    assert np.isfinite(float(loss)) and float(aux["target_variance"]) > 0
    assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(g_teacher))
    student = flatten(g_student)
    assert float(jnp.abs(student["encoder/stem/kernel"]).max()) > 0
    assert float(jnp.abs(student["decoder/project_out/kernel"]).max()) > 0


def test_a_constant_teacher_is_a_collapse_and_a_healthy_one_is_not():
    graphdef, params = data2vec.create(MODEL, D2V)
    loss_fn = jax.jit(lambda p, t: loss_fn_of(graphdef)(p, batch(), jax.random.key(0), 0, t))
    teacher = data2vec.teacher_part(params)
    _, healthy = loss_fn(params, teacher)
    # a teacher whose weights are all zero computes the same output at every frame
    _, constant = loss_fn(params, jax.tree.map(jnp.zeros_like, teacher))
    assert float(constant["target_std"]) < 0.01 < 0.1 < float(healthy["target_std"])
    problem = lambda aux, step=6000: data2vec.collapse_problem(  # noqa: E731
        step, {k: float(v) for k, v in aux.items()}, 0.1, 0.01, 5000
    )
    assert problem(healthy) is None
    assert problem(constant).startswith("step 6000: the teacher's targets collapsed (std 0.001")
    assert problem(constant, step=5000) is None  # still in the warm-up
    predicting_one_vector = {"target_std": 1.0, "prediction_std": 0.005}
    assert "the student's predictions collapsed (std 0.005 < config.collapse_prediction_std" in (
        data2vec.collapse_problem(6000, predicting_one_vector, 0.1, 0.01, 5000)
    )


def loss_fn_of(graphdef):
    return data2vec.make_loss(graphdef, D2V, PRESET, None)


def test_the_teacher_follows_the_ema_schedule_exactly():
    config = data2vec.Data2vecConfig(ema_start=0.9, ema_end=0.99, ema_ramp_steps=4)
    assert [float(data2vec.ema_decay(config, s)) for s in (0, 2, 4, 9)] == pytest.approx(
        [0.9, 0.945, 0.99, 0.99]
    )
    graphdef, params = data2vec.create(MODEL, D2V)
    tx = optax.sgd(0.05)
    step_fn = jax.jit(
        step_lib.make_train_step(
            data2vec.make_loss(graphdef, D2V, PRESET, None),
            tx,
            ema_decay=lambda s: data2vec.ema_decay(config, s),
            teacher_is_ema=True,
            ema_of=data2vec.teacher_part,
        )
    )
    state = step_lib.init_state(params, tx, data2vec.teacher_part)
    teacher = flatten(state["ema_params"])
    # the teacher is the encoder alone: the decoder has no EMA copy
    assert set(teacher) == {
        k.removeprefix("encoder/") for k in flatten(params) if k.startswith("encoder/")
    }
    for s in range(5):
        state, metrics = step_fn(state, batch(seed=s), jax.random.key(0))
        d = float(data2vec.ema_decay(config, s))
        assert float(metrics["ema_decay"]) == pytest.approx(d)
        student = flatten(state["params"]["encoder"])
        teacher = {k: d * v + (1 - d) * np.asarray(student[k]) for k, v in teacher.items()}
        for k, v in flatten(state["ema_params"]).items():
            np.testing.assert_allclose(v, teacher[k], rtol=1e-5, atol=1e-7)
    assert int(state["skipped"]) == 0


def test_the_student_encoder_loads_into_a_finetuning_model_by_path():
    from aslx.model import model as model_lib
    from aslx.training import warm_start

    _, params = data2vec.create(MODEL, D2V)
    _, finetune_params = model_lib.create(
        model_config_lib.sized(
            "tiny", num_landmarks=PRESET.num_landmarks, ctc_vocab=0, num_classes=35
        )
    )
    _, report = warm_start.warm_start(finetune_params, flatten(params))
    assert report.fresh == ["class_head/bias", "class_head/kernel"]
    assert all(s.startswith("decoder/") for s in report.skipped)
    assert all(p.startswith("encoder/") for p in report.loaded)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), ratio=st.sampled_from([0.3, 0.5, 0.8]))
def test_gathered_rows_keep_the_frame_mask_a_prefix(seed, ratio):
    """Attention takes only each row's key length, so the student's gathered frame mask must
    stay a prefix: visible indices are increasing, and a prefix gathered in order is one."""
    rows, frames = 6, 40
    lengths = np.random.default_rng(seed).integers(0, frames + 1, rows)
    frame_mask = jnp.asarray(np.arange(frames)[None] < lengths[:, None])
    visible, _ = data2vec.inverse_block_mask(jax.random.key(seed), rows, frames, ratio, 3)
    gathered = np.asarray(data2vec.gather_frames(frame_mask, visible))
    counts = gathered.sum(1)
    np.testing.assert_array_equal(gathered, np.arange(gathered.shape[1])[None] < counts[:, None])
