"""Viterbi forced alignment against brute force over every frame path, the JAX batch version
against the NumPy one, the record-frame map and the alignments file."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx import ctc_frames
from aslx.decoding import viterbi
from aslx.decoding.ctc import collapse
from aslx.input import fit
from aslx.records import alignments as alignments_file

BATCH_VITERBI = jax.jit(viterbi.viterbi_align_batch, static_argnames="blank_id")


@functools.cache
def all_paths(frames: int, vocab: int) -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    """Every length-``frames`` path over ``vocab`` symbols, and each one's collapse for every
    blank id: ``(paths [V^T, T], collapses[blank][path])``."""
    paths = np.asarray(list(itertools.product(range(vocab), repeat=frames)), np.int64)
    paths = paths.reshape(-1, frames)
    collapses = tuple(tuple(tuple(collapse(p, b)) for p in paths) for b in range(vocab))
    return paths, collapses


def positions_of(path, blank_id: int) -> np.ndarray:
    """Label positions of a path that collapses to its label: the index of each frame's run of
    a label symbol among all such runs, -1 on blanks."""
    out, k, previous = [], -1, None
    for symbol in path:
        if symbol == blank_id:
            out.append(-1)
        else:
            k += symbol != previous
            out.append(k)
        previous = symbol
    return np.asarray(out, np.int32)


def brute_force(log_probs: np.ndarray, labels: list[int], blank_id: int):
    """``(best score, its positions, second-best score)`` over every path that collapses to
    ``labels``, or ``None`` when none does."""
    frames, vocab = log_probs.shape
    paths, collapses = all_paths(frames, vocab)
    good = np.asarray([c == tuple(labels) for c in collapses[blank_id]])
    if not good.any():
        return None
    scores = log_probs[np.arange(frames), paths[good]].sum(-1)
    order = np.argsort(-scores)
    second = scores[order[1]] if len(order) > 1 else -np.inf
    return scores[order[0]], positions_of(paths[good][order[0]], blank_id), second


def assert_valid(alignment: np.ndarray, labels: list[int]) -> None:
    """Positions over labelled frames start at 0, never go down, step by at most 1 and end at
    the last label; two labels on adjacent frames differ (equal ones need a blank between);
    -1 elsewhere. Then the path the alignment names collapses to the label."""
    alignment = np.asarray(alignment)
    assert alignment.dtype == np.int32
    assert (alignment >= -1).all()
    shown = alignment[alignment >= 0]
    if not labels:
        assert shown.size == 0
        return
    assert shown[0] == 0 and shown[-1] == len(labels) - 1
    steps = np.diff(shown)
    assert ((steps == 0) | (steps == 1)).all(), alignment
    for t in range(1, len(alignment)):
        a, b = alignment[t - 1], alignment[t]
        if a >= 0 and b == a + 1:
            assert labels[a] != labels[b], (alignment, labels)
    blank = len(set(labels)) + 100  # an id no label uses
    assert collapse(viterbi.symbols(alignment, labels, blank), blank) == list(labels)


def random_log_probs(seed: int, frames: int, vocab: int, peaky: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(frames, vocab)) * (4.0 if peaky else 1.0)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


@st.composite
def cases(draw):
    vocab = draw(st.integers(3, 4))
    frames = draw(st.integers(1, 6 if vocab == 3 else 5))
    blank_id = draw(st.integers(0, vocab - 1))
    symbols = [s for s in range(vocab) if s != blank_id]
    labels = draw(st.lists(st.sampled_from(symbols), min_size=0, max_size=frames + 1))
    seed = draw(st.integers(0, 2**31 - 1))
    peaky = draw(st.booleans())
    return random_log_probs(seed, frames, vocab, peaky), labels, blank_id


@settings(max_examples=300, deadline=None)
@given(cases())
def test_viterbi_is_the_best_path_of_brute_force(case):
    log_probs, labels, blank_id = case
    best = brute_force(log_probs, labels, blank_id)
    if best is None:  # no path collapses to the label: it needs more frames than there are
        assert ctc_frames.min_frames(labels) > len(log_probs)
        with pytest.raises(ValueError, match="needs at least"):
            viterbi.viterbi_align(log_probs, labels, blank_id)
        return
    score, positions, second = best
    alignment = viterbi.viterbi_align(log_probs, labels, blank_id)
    assert_valid(alignment, labels)
    assert viterbi.score(log_probs, alignment, labels, blank_id) == pytest.approx(score, abs=1e-9)
    if score - second > 1e-9:  # a unique best path
        np.testing.assert_array_equal(alignment, positions)


PAD_FRAMES, PAD_LABELS, PAD_VOCAB = 8, 8, 4  # one compiled shape per blank id


@settings(max_examples=200, deadline=None)
@given(cases(), st.integers(0, 2**31 - 1))
def test_jax_batch_matches_brute_force_with_padding(case, seed):
    """One example padded with garbage (frames, labels, an unused vocabulary column): the same
    best path as brute force (float32), -1 on padding, ``ok`` exactly when a path exists."""
    log_probs, labels, blank_id = case
    frames, vocab = log_probs.shape
    rng = np.random.default_rng(seed)
    padded = random_log_probs(seed, PAD_FRAMES, PAD_VOCAB, True)
    padded[:frames, :vocab] = log_probs
    label_row = rng.integers(-1, PAD_VOCAB, size=PAD_LABELS)
    label_row[: len(labels)] = labels
    alignment, score, ok = jax.device_get(
        BATCH_VITERBI(
            jnp.asarray(padded[None], jnp.float32),
            jnp.asarray(np.arange(PAD_FRAMES) < frames)[None],
            jnp.asarray(label_row[None], jnp.int32),
            jnp.asarray(np.arange(PAD_LABELS) < len(labels))[None],
            blank_id=blank_id,
        )
    )
    best = brute_force(log_probs, labels, blank_id)
    assert bool(ok[0]) == (best is not None)
    assert (alignment[0, frames:] == -1).all()
    if best is None:
        assert (alignment[0] == -1).all()
        return
    assert_valid(alignment[0, :frames], labels)
    want, positions, second = best
    assert float(score[0]) == pytest.approx(want, abs=1e-4)
    assert viterbi.score(log_probs, alignment[0, :frames], labels, blank_id) == pytest.approx(
        want, abs=1e-4
    )
    if want - second > 1e-3:
        np.testing.assert_array_equal(alignment[0, :frames], positions)


def test_jax_batch_equals_numpy_on_longer_clips():
    """A batch of realistic sizes (up to 40 frames, 12 labels with repeats, 30 symbols):
    every row's path is as probable as the NumPy reference's (float64), and the same path when
    the best is clearly unique."""
    rng = np.random.default_rng(0)
    size, frames, max_labels, vocab, blank_id = 16, 40, 12, 30, 29
    log_probs = np.stack([random_log_probs(i, frames, vocab, True) for i in range(size)])
    lengths = rng.integers(0, max_labels + 1, size)
    n = rng.integers(1, frames + 1, size)  # some rows too short for their label
    labels = rng.integers(0, 3, size=(size, max_labels))  # few symbols: many equal neighbours
    frame_mask = np.arange(frames)[None] < n[:, None]
    label_mask = np.arange(max_labels)[None] < lengths[:, None]
    got, scores, ok = jax.device_get(
        BATCH_VITERBI(log_probs, frame_mask, labels, label_mask, blank_id=blank_id)
    )
    for i in range(size):
        real = int(frame_mask[i].sum())
        lab = labels[i, : lengths[i]].tolist()
        if ctc_frames.min_frames(lab) > real:
            assert not ok[i] and (got[i] == -1).all()
            continue
        assert ok[i]
        want = viterbi.viterbi_align(log_probs[i, :real], lab, blank_id)
        best = viterbi.score(log_probs[i, :real], want, lab, blank_id)
        assert viterbi.score(log_probs[i, :real], got[i, :real], lab, blank_id) == pytest.approx(
            best, abs=1e-3
        )
        assert float(scores[i]) == pytest.approx(best, abs=1e-3)
        assert_valid(got[i, :real], lab)
        assert (got[i, real:] == -1).all()


def test_repeated_letters_need_a_blank_between():
    """'aa' in 3 frames: the only path is a _ a; in 2 frames there is none."""
    log_probs = np.log(np.full((3, 3), 1 / 3))
    np.testing.assert_array_equal(viterbi.viterbi_align(log_probs, [1, 1], 0), [0, -1, 1])
    with pytest.raises(ValueError, match="needs at least 3 frames"):
        viterbi.viterbi_align(log_probs[:2], [1, 1], 0)


def test_the_model_decides_where_labels_go():
    """A model sure of 'b' on frames 3–4 puts the label there, blanks elsewhere."""
    probs = np.full((6, 3), 0.05)
    probs[:, 0] = 0.9
    probs[3:5] = [0.05, 0.05, 0.9]
    alignment = viterbi.viterbi_align(np.log(probs), [2], 0)
    np.testing.assert_array_equal(alignment, [-1, -1, -1, 0, 0, -1])


def test_bad_inputs_are_refused():
    log_probs = np.log(np.full((4, 3), 1 / 3))
    with pytest.raises(ValueError, match="not the blank"):
        viterbi.viterbi_align(log_probs, [0], 0)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        viterbi.viterbi_align(log_probs, [3], 0)
    with pytest.raises(ValueError, match="NaN"):
        viterbi.viterbi_align(np.full((4, 3), np.nan), [1], 0)
    impossible = log_probs.copy()
    impossible[:, 1] = -np.inf
    with pytest.raises(ValueError, match="probability 0"):
        viterbi.viterbi_align(impossible, [1], 0)
    np.testing.assert_array_equal(viterbi.viterbi_align(log_probs, [], 0), [-1] * 4)
    with pytest.raises(ValueError, match="needs at least 1 frames"):
        viterbi.viterbi_align(np.zeros((0, 3)), [1], 0)


@pytest.mark.parametrize("stored", [1, 5, 31, 32, 33, 47, 64, 100, 257])
@pytest.mark.parametrize("max_frames", [1, 7, 32])
def test_to_record_frames_gives_kept_frames_their_fitted_alignment(stored, max_frames):
    kept = fit.fit_indices(stored, max_frames)
    fitted = np.arange(len(kept), dtype=np.int32) % 3 - 1
    carried = viterbi.to_record_frames(fitted, stored, max_frames)
    assert carried.shape == (stored,)
    np.testing.assert_array_equal(carried[kept], fitted)


def test_alignments_file_round_trip_and_checks(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    (records / "metadata.json").write_text('{"a": 1}')
    entries = {"1/2": np.asarray([0, 0, -1, 1], np.int32), "x": np.asarray([-1], np.int32)}
    meta = {"split": "train", "records": str(records)}
    meta["records_sha256"] = alignments_file.records_fingerprint(records)
    out = tmp_path / "sub" / "alignments"  # no .npz suffix: written exactly there
    alignments_file.write_file(out, entries, meta)
    assert sorted(p.name for p in out.parent.iterdir()) == ["alignments"]  # no temp left
    got, got_meta = alignments_file.read_file(out)
    assert got.keys() == entries.keys()
    for key, value in entries.items():
        np.testing.assert_array_equal(got[key], value)
        assert got[key].dtype == np.int32
    assert got_meta == meta | {"version": alignments_file.FILE_VERSION}
    alignments_file.check_fits(got_meta, records, "train", out)
    with pytest.raises(ValueError, match="--split val"):
        alignments_file.check_fits(got_meta, records, "val", out)
    (records / "metadata.json").write_text('{"a": 2}')
    with pytest.raises(ValueError, match="differs"):
        alignments_file.check_fits(got_meta, records, "train", out)
    with pytest.raises(FileNotFoundError, match="aslx.align"):
        alignments_file.read_meta(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        alignments_file.read_meta(tmp_path / "bad.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not an alignments file"):
        alignments_file.read_meta(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="reserved"):
        alignments_file.write_file(out, {alignments_file.META_KEY: np.zeros(1)}, meta)
