"""Model: RoPE, padding invariance, LayerDrop, the joint gate, heads, sizes, bfloat16."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.model import config as config_lib
from aslx.model import gate as gate_lib
from aslx.model import model as model_lib
from aslx.model import rope


def tiny(**overrides) -> config_lib.ModelConfig:
    return config_lib.sized("tiny", **({"num_classes": 7, "distill_vocab": 11} | overrides))


def random_batch(seed: int, batch=3, frames=12, landmarks=75):
    rng = np.random.default_rng(seed)
    points = jnp.asarray(rng.normal(size=(batch, frames, landmarks, 3)), jnp.float32)
    lengths = rng.integers(1, frames + 1, size=batch)
    lengths[0] = frames
    mask = jnp.asarray(np.arange(frames)[None] < lengths[:, None])
    return points, mask, lengths


def forward(config, seed=0, **kwargs):
    graphdef, params = model_lib.create(config, seed)
    return jax.jit(lambda p, *a, **k: model_lib.apply(graphdef, p, *a, **k))(params, **kwargs)


# --- RoPE --------------------------------------------------------------------------------------


def rope_reference(x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
    """Each channel pair multiplied by an explicit 2 × 2 rotation matrix."""
    out = np.empty_like(x, dtype=np.float64)
    half = x.shape[-1] // 2
    for b, t, n in np.ndindex(*x.shape[:3]):
        for i in range(half):
            angle = positions[b, t] * base ** (-i / half)
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            out[b, t, n, 2 * i : 2 * i + 2] = rotation @ x[b, t, n, 2 * i : 2 * i + 2]
    return out


def test_rope_matches_rotation_matrices():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 2, 8)).astype(np.float32)
    positions = rng.integers(0, 300, size=(2, 5))
    np.testing.assert_allclose(
        rope.rotate(jnp.asarray(x), jnp.asarray(positions)),
        rope_reference(x, positions, 1e4),
        rtol=1e-4,
        atol=1e-5,
    )


@settings(max_examples=25, deadline=None)
@given(shift=st.integers(-500, 500), seed=st.integers(0, 1000))
def test_rope_scores_depend_only_on_relative_position(shift, seed):
    """Shifting every position by a constant leaves every query-key score unchanged."""
    rng = np.random.default_rng(seed)
    q, k = (jnp.asarray(rng.normal(size=(1, 6, 2, 16)), jnp.float32) for _ in range(2))
    positions = jnp.asarray(rng.integers(0, 1000, size=(1, 6)))
    scores = lambda p: jnp.einsum("btnh,bsnh->bnts", rope.rotate(q, p), rope.rotate(k, p))  # noqa: E731
    reference = scores(positions)
    # float32 angles at positions up to 1,500 carry ~1e-4 rad of rounding, which a 16-wide dot
    # product scales by |q|·|k|; a position-dependent bug moves scores by O(1)
    tolerance = 1e-4 * float(jnp.abs(reference).max())
    np.testing.assert_allclose(scores(positions + shift), reference, atol=tolerance)


def test_encoder_is_invariant_to_shifting_positions():
    """The whole model sees positions only through RoPE, so a global shift changes nothing."""
    points, mask, _ = random_batch(1)
    positions = jnp.broadcast_to(jnp.arange(12), (3, 12))
    a = forward(tiny(), landmarks=points, frame_mask=mask, positions=positions)
    b = forward(tiny(), landmarks=points, frame_mask=mask, positions=positions + 1000)
    for name in ("ctc_logits", "class_logits"):
        np.testing.assert_allclose(a[name], b[name], atol=2e-4)


# --- padding, LayerDrop, determinism -----------------------------------------------------------


@pytest.mark.parametrize("stem_padding", config_lib.STEM_PADDINGS)
def test_padding_frames_never_influence_valid_frames(stem_padding):
    """Appending padded frames of random content leaves every valid output unchanged."""
    points, mask, lengths = random_batch(2)
    rng = np.random.default_rng(3)
    extra = jnp.asarray(rng.normal(size=(3, 9, 75, 3)) * 100, jnp.float32)
    padded_points = jnp.concatenate([points, extra], axis=1)
    padded_mask = jnp.concatenate([mask, jnp.zeros((3, 9), bool)], axis=1)
    # The padded frames inside the first 12 get random content too.
    noise = jnp.asarray(rng.normal(size=points.shape) * 100, jnp.float32)
    points_noisy = jnp.where(mask[..., None, None], points, noise)
    padded_points = padded_points.at[:, :12].set(points_noisy)
    config = tiny(stem_padding=stem_padding)
    a = forward(config, landmarks=points, frame_mask=mask)
    b = forward(config, landmarks=padded_points, frame_mask=padded_mask)
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(a["ctc_logits"][i, :n], b["ctc_logits"][i, :n], atol=1e-5)
    np.testing.assert_allclose(a["class_logits"], b["class_logits"], atol=1e-5)


def test_edge_padding_reads_a_photo_as_the_pose_held():
    """With ``stem_padding='edge'`` a one-frame clip and the same frame held for any length
    give the same features at every real frame, hence the same class logits; zero padding
    tells them apart (the stem sees zeros beside the photo)."""
    rng = np.random.default_rng(4)
    pose = jnp.asarray(rng.normal(size=(75, 3)), jnp.float32)
    lengths = np.array([1, 2, 7, 12])
    mask = jnp.asarray(np.arange(12)[None] < lengths[:, None])
    garbage = jnp.asarray(rng.normal(size=(4, 12, 75, 3)), jnp.float32)
    points = jnp.where(mask[..., None, None], pose, garbage)
    for padding, same in (("edge", True), ("zeros", False)):
        out = forward(tiny(stem_padding=padding), landmarks=points, frame_mask=mask)
        logits = np.asarray(out["class_logits"])
        assert np.allclose(logits, logits[:1], atol=1e-5) == same, padding
        if same:
            for i, n in enumerate(lengths):
                np.testing.assert_allclose(
                    out["ctc_logits"][i, :n],
                    np.broadcast_to(out["ctc_logits"][0, 0], (n, 60)),
                    atol=1e-5,
                )


def test_layer_drop_zero_equals_no_layer_drop_and_eval_is_deterministic():
    points, mask, _ = random_batch(4)
    config = tiny(layer_drop=0.0, dropout=0.0)
    evaluation = forward(config, landmarks=points, frame_mask=mask)
    again = forward(config, landmarks=points, frame_mask=mask)
    training = forward(config, landmarks=points, frame_mask=mask, key=jax.random.key(7))
    for name in evaluation:
        np.testing.assert_array_equal(evaluation[name], again[name])
        np.testing.assert_allclose(training[name], evaluation[name], atol=1e-6)


def test_layer_drop_skips_whole_blocks_per_example():
    """With LayerDrop near 1, every block is skipped: features = final_norm(stem(x))."""
    points, mask, _ = random_batch(5)
    config = tiny(layer_drop=0.999999, dropout=0.0)
    graphdef, params = model_lib.create(config)
    out = model_lib.apply(graphdef, params, points, mask, key=jax.random.key(0))
    model = nnx.merge(graphdef, params)
    x = points.reshape(3, 12, -1) * mask[..., None]
    expected = model.encoder.final_norm(model.encoder.stem(x))
    np.testing.assert_allclose(out["features"], expected, atol=1e-5)
    with_blocks = model_lib.apply(graphdef, params, points, mask)
    assert not np.allclose(with_blocks["features"], expected, atol=1e-3)


def test_training_keys_matter_and_repeat():
    points, mask, _ = random_batch(6)
    config = tiny(dropout=0.3, layer_drop=0.3)
    a = forward(config, landmarks=points, frame_mask=mask, key=jax.random.key(1))
    b = forward(config, landmarks=points, frame_mask=mask, key=jax.random.key(1))
    c = forward(config, landmarks=points, frame_mask=mask, key=jax.random.key(2))
    np.testing.assert_array_equal(a["ctc_logits"], b["ctc_logits"])
    assert not np.allclose(a["ctc_logits"], c["ctc_logits"])


# --- heads, sizes, numerics ---------------------------------------------------------------------


def test_head_shapes():
    points, mask, _ = random_batch(7)
    out = forward(tiny(gate="sigmoid"), landmarks=points, frame_mask=mask)
    assert out["ctc_logits"].shape == (3, 12, 60) and out["distill_logits"].shape == (3, 12, 11)
    assert out["class_logits"].shape == (3, 7) and out["features"].shape == (3, 12, 64)
    assert out["gate_mask"].shape == (3, 75)
    assert all(v.dtype == jnp.float32 for v in out.values())


def test_masked_mean_ignores_padding():
    features = jnp.asarray(np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3))
    mask = jnp.asarray([[True, True, False, False], [False, False, False, False]])
    np.testing.assert_allclose(model_lib.masked_mean(features, mask)[0], features[0, :2].mean(0))
    np.testing.assert_array_equal(model_lib.masked_mean(features, mask)[1], 0)


@pytest.mark.parametrize(("size", "expected"), [("small", 19.1e6), ("large", 303e6)])
def test_parameter_counts(size, expected):
    """75 points × 3 inputs and a 60-way CTC head, as the sizes are defined."""
    _, params = model_lib.abstract_params(config_lib.sized(size))
    assert abs(model_lib.count_params(params) - expected) / expected < 0.03


def test_bfloat16_compute_keeps_float32_parameters_and_outputs():
    points, mask, _ = random_batch(8)
    graphdef, params = model_lib.create(tiny(compute_dtype="bfloat16"))
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    bf16 = model_lib.apply(graphdef, params, points, mask)
    graphdef32, _ = model_lib.create(tiny())
    f32 = model_lib.apply(graphdef32, params, points, mask)
    assert bf16["ctc_logits"].dtype == jnp.float32
    scale = float(jnp.abs(f32["ctc_logits"]).max())
    np.testing.assert_allclose(bf16["ctc_logits"], f32["ctc_logits"], atol=0.05 * scale)


def test_config_errors():
    with pytest.raises(ValueError, match="heads"):
        config_lib.ModelConfig(dim=30, num_heads=4)
    with pytest.raises(ValueError, match="gate"):
        config_lib.ModelConfig(gate="softmax")
    with pytest.raises(ValueError, match="stem_padding must be one of"):
        config_lib.ModelConfig(stem_padding="reflect")
    with pytest.raises(KeyError, match="tiny"):
        config_lib.sized("huge")


# --- the joint gate ----------------------------------------------------------------------------

GATE_KINDS = ["sigmoid", "hard_concrete"]


def gate_with_logits(kind: str, logits) -> gate_lib.JointGate:
    gate = gate_lib.JointGate(len(logits), kind)
    gate.logits[...] = jnp.asarray(logits, jnp.float32)
    return gate


@pytest.mark.parametrize("kind", GATE_KINDS)
def test_gate_gradients_are_independent_per_landmark(kind):
    """The training mask's Jacobian w.r.t. the keep-logits is diagonal: no landmark's decision
    depends on another's (a softmax across landmarks would fill the off-diagonal)."""
    logits = jnp.linspace(-2, 2, 9)

    def mask(values):
        gate = gate_with_logits(kind, values)
        return gate(1, train=True, key=jax.random.key(0), temperature=0.7)[0]

    jacobian = np.asarray(jax.jacobian(mask)(logits))
    assert np.all(jacobian[~np.eye(9, dtype=bool)] == 0)
    assert np.any(np.diag(jacobian) != 0)
    probs = jax.jacobian(lambda v: gate_with_logits(kind, v).keep_probabilities(0.7))(logits)
    assert np.all(np.asarray(probs)[~np.eye(9, dtype=bool)] == 0)


@pytest.mark.parametrize("kind", GATE_KINDS)
def test_expected_l0_is_the_sum_of_keep_probabilities(kind):
    gate = gate_with_logits(kind, np.linspace(-4, 4, 543))
    probs = gate.keep_probabilities(0.5)
    assert probs.shape == (543,)
    np.testing.assert_allclose(gate.expected_l0(0.5), probs.sum(), rtol=1e-6)
    assert float(gate.expected_l0(0.5)) > 1  # a sum, not a mean


def test_hard_concrete_keep_probability_matches_sampling():
    """The closed-form P(z > 0) equals the sampled frequency of nonzero masks."""
    gate = gate_with_logits("hard_concrete", [-2.0, -0.5, 0.0, 1.0])
    z = gate(40_000, train=True, key=jax.random.key(3))
    np.testing.assert_allclose((z > 0).mean(0), gate.keep_probabilities(), atol=0.01)
    assert (z == 0).any() and (z == 1).any()  # the stretch reaches exact 0 and 1


@pytest.mark.parametrize("kind", GATE_KINDS)
def test_evaluation_mask_is_exactly_zero_or_one(kind):
    gate = gate_with_logits(kind, np.linspace(-3, 3, 20))
    mask = np.asarray(gate(4, train=False))
    assert set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_array_equal(mask[0], np.linspace(-3, 3, 20) > 0)
    assert int(gate.num_kept()) == 10


def test_the_evaluation_threshold_is_the_models_and_louizos_is_where_z_hat_is_nonzero():
    logits = np.asarray([-3.0, -2.5, -2.3, -1.0, 0.0, 0.5], np.float32)
    # Louizos et al.'s test-time estimate, computed from its definition
    z_hat = np.clip(
        1 / (1 + np.exp(-logits)) * (gate_lib.ZETA - gate_lib.GAMMA) + gate_lib.GAMMA, 0, 1
    )
    np.testing.assert_array_equal(z_hat > 0, gate_lib.kept(logits, gate_lib.NONZERO_THRESHOLD))
    assert gate_lib.NONZERO_THRESHOLD == pytest.approx(-2.398, abs=1e-3)
    gate = gate_lib.JointGate(6, "hard_concrete", eval_threshold=gate_lib.NONZERO_THRESHOLD)
    gate.logits[...] = jnp.asarray(logits)
    assert int(gate.num_kept()) == 4
    np.testing.assert_array_equal(gate(2, train=False)[1], [0, 0, 1, 1, 1, 1])
    # through the model config, as a run sets it (config.model.gate_eval_threshold)
    config = tiny(num_landmarks=6, gate="hard_concrete", gate_eval_threshold=-2.4)
    assert model_lib.SignModel(config, nnx.Rngs(0)).gate.eval_threshold == -2.4
    assert int(gate_with_logits("hard_concrete", logits).num_kept()) == 1  # default 0: only 0.5


@pytest.mark.parametrize("kind", GATE_KINDS)
def test_very_negative_logits_zero_every_landmark(kind):
    """A closed gate removes the input: the model sees exactly zeros, in training and
    evaluation, on the full 543-point preset."""
    config = tiny(num_landmarks=543, gate=kind, gate_init=-1e4, dropout=0.0, layer_drop=0.0)
    points, mask, _ = random_batch(9, landmarks=543)
    graphdef, params = model_lib.create(config)
    for key in (None, jax.random.key(0)):
        out = model_lib.apply(graphdef, params, points, mask, key=key)
        assert float(jnp.abs(out["gate_mask"]).max()) == 0.0
        zeros = model_lib.apply(graphdef, params, jnp.zeros_like(points), mask, key=key)
        np.testing.assert_array_equal(out["ctc_logits"], zeros["ctc_logits"])


def test_gate_needs_a_key_to_sample():
    with pytest.raises(ValueError, match="key"):
        gate_lib.JointGate(5, "hard_concrete")(2, train=True)


# --- attention, stacked blocks, remat ------------------------------------------------------------


def attention_reference(q, k, v, frame_mask):
    """The hand-written attention aslx had before: float32 logits, padded keys at -1e9 (a row
    with no valid key attends uniformly), softmax, values."""
    logits = jnp.einsum("btnh,bsnh->bnts", q, k, preferred_element_type=jnp.float32)
    logits = logits / jnp.sqrt(jnp.float32(q.shape[-1]))
    logits = jnp.where(frame_mask[:, None, None, :], logits, -1e9)
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    return jnp.einsum("bnts,bsnh->btnh", probs, v)


@pytest.mark.parametrize("implementation", ["xla", "explicit"])
@pytest.mark.parametrize("seed", range(3))
def test_attention_equals_the_reference_with_padded_rows(seed, implementation):
    """XLA's fused attention and the heads-first one the TFLite graph runs."""
    from aslx.model import encoder

    def dot_product_attention(q, k, v, lengths):
        return encoder.dot_product_attention(q, k, v, lengths, implementation)

    rng = np.random.default_rng(seed)
    b, t, n, h = 4, 9, 2, 8
    q, k, v = (jnp.asarray(rng.normal(size=(b, t, n, h)), jnp.float32) for _ in range(3))
    lengths = rng.integers(1, t + 1, size=b)
    lengths[0] = 0  # a fully padded example
    lengths[1] = t
    mask = jnp.asarray(np.arange(t)[None] < lengths[:, None])
    fused = dot_product_attention(q, k, v, jnp.asarray(lengths))
    assert bool(jnp.isfinite(fused).all())
    np.testing.assert_allclose(fused, attention_reference(q, k, v, mask), atol=1e-5)

    def loss(q, k, v):  # what a trainer reads: the valid query rows only
        out = dot_product_attention(q, k, v, jnp.asarray(lengths))
        return (out * mask[..., None, None]).sum()

    grads = jax.grad(loss, argnums=(0, 1, 2))(q, k, v)
    for g in grads:
        assert bool(jnp.isfinite(g).all())
        np.testing.assert_array_equal(g[0], 0.0)  # the fully padded example learns nothing
        for i, n_valid in enumerate(lengths):  # nor does any padded frame
            np.testing.assert_array_equal(g[i, n_valid:], 0.0)


def test_scanned_and_unrolled_blocks_agree_on_the_same_weights():
    points, mask, _ = random_batch(5)
    key = jax.random.key(3)
    for kwargs in ({}, {"key": key}):  # evaluation, and training (LayerDrop, dropout)
        scanned = forward(tiny(num_layers=3), landmarks=points, frame_mask=mask, **kwargs)
        unrolled = forward(
            tiny(num_layers=3, scan_layers=False), landmarks=points, frame_mask=mask, **kwargs
        )
        for name in ("features", "ctc_logits", "class_logits"):
            np.testing.assert_allclose(scanned[name], unrolled[name], atol=1e-5)


def test_remat_policies_give_the_same_gradients():
    points, mask, _ = random_batch(6)
    key = jax.random.key(4)

    def gradients(config):
        graphdef, params = model_lib.create(config, seed=0)

        def loss(params):
            out = model_lib.apply(graphdef, params, points, mask, key=key)
            return (out["features"] ** 2 * mask[..., None]).mean()

        return jax.jit(jax.grad(loss))(params)

    plain = jax.tree.leaves(gradients(tiny(num_layers=3)))
    for remat in config_lib.REMAT_POLICIES[1:]:
        rematerialised = jax.tree.leaves(gradients(tiny(num_layers=3, remat=remat)))
        for a, b in zip(plain, rematerialised):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=remat)


def test_blocks_are_stacked_on_an_unsharded_layers_axis():
    from aslx.training import optimizer, sharding

    config = tiny(num_layers=3)
    _, params = model_lib.create(config)
    kernel = params["encoder"]["blocks"]["mlp_in"]["kernel"]
    assert kernel.shape == (3, config.dim, 4 * config.dim)
    assert kernel.get_metadata()["logical_axes"] == ("layers", "embed", "mlp")
    assert sharding.RULES["layers"] is None
    # A stack of biases or norm scales is still a vector: no weight decay.
    decays = optimizer.decay_mask(params)
    assert decays["encoder"]["blocks"]["mlp_in"]["kernel"]
    assert not decays["encoder"]["blocks"]["mlp_in"]["bias"]
    assert not decays["encoder"]["blocks"]["mlp_norm"]["scale"]
    assert decays["encoder"]["stem"]["kernel"] and not decays["encoder"]["stem"]["bias"]


def test_size_name_names_the_fields_that_change_a_sizes_shape():
    """Log lines call a model by its size only when its shape is that size's: a tiny model
    made 4 × 128 says so, and fields that leave the shape alone are not listed."""
    tiny = config_lib.sized("tiny")
    assert config_lib.size_name("tiny", tiny) == "tiny"
    assert config_lib.size_name("tiny", config_lib.sized("tiny", stem_padding="edge")) == "tiny"
    wider = config_lib.sized("tiny", num_layers=4, dim=128, num_heads=4)
    assert config_lib.size_name("tiny", wider) == "tiny with num_layers=4, dim=128, num_heads=4"
    assert config_lib.size_name("small", config_lib.sized("small", dim=128)) == "small with dim=128"
