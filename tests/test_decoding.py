"""CTC decoding against exhaustive search, and the metrics against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.decoding import ctc, metrics


def labelling_probabilities(log_probs: np.ndarray, blank_id: int) -> dict[tuple, float]:
    """P(labelling) for every labelling, summing every path (exhaustive)."""
    probs: dict[tuple, float] = {}
    for path in itertools.product(range(log_probs.shape[-1]), repeat=len(log_probs)):
        label = tuple(ctc.collapse(path, blank_id))
        probs[label] = probs.get(label, 0.0) + np.exp(
            sum(log_probs[t, s] for t, s in enumerate(path))
        )
    return probs


def test_collapse_merges_repeats_then_drops_blanks():
    assert ctc.collapse([1, 1, 0, 1, 2, 2, 0], blank_id=0) == [1, 1, 2]
    assert ctc.collapse([0, 0, 0], blank_id=0) == []


def test_greedy_is_the_collapsed_best_path_over_real_frames():
    logits = np.full((2, 5, 3), -5.0)
    best = [[1, 1, 0, 1, 2], [2, 0, 2, 1, 1]]
    for b, path in enumerate(best):
        logits[b, np.arange(5), path] = 0.0
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    assert ctc.greedy(logits, mask, blank_id=0) == [[1, 1, 2], [2, 2]]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), frames=st.integers(1, 6), blank_id=st.sampled_from([0, 2]))
def test_prefix_beam_search_finds_the_most_probable_labelling(seed, frames, blank_id):
    """With a beam wider than the number of prefixes, beam search returns exactly the labelling
    that exhaustive search over all paths finds most probable."""
    rng = np.random.default_rng(seed)
    log_probs = ctc.log_softmax(rng.normal(size=(frames, 3)) * 2)
    probs = labelling_probabilities(log_probs, blank_id)
    best = max(probs, key=probs.get)
    found = ctc.prefix_beam_search(log_probs, blank_id, beam=64)
    assert np.isclose(probs[tuple(found)], probs[best], rtol=1e-9)


def test_beam_search_can_beat_greedy():
    """Two paths for 'a' outweigh the single best path '_ _' → beam 'a', greedy ''."""
    log_probs = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))  # symbol 0 is the blank
    assert ctc.greedy(log_probs[None], np.ones((1, 2), bool), blank_id=0) == [[]]
    assert ctc.prefix_beam_search(log_probs, blank_id=0, beam=4) == [1]  # .4*.4+.4*.6+.6*.4


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    frames=st.integers(1, 6),
    symbols=st.integers(2, 3),
    blank_id=st.integers(0, 2),
)
def test_batched_beam_search_finds_the_most_probable_labelling(seed, frames, symbols, blank_id):
    """The on-device search, with a beam wider than the number of prefixes, returns the
    labelling exhaustive search finds most probable: repeated labels (which need a blank
    between them) and the blank at any index, every example of a batch with its own length."""
    blank_id = min(blank_id, symbols - 1)
    rng = np.random.default_rng(seed)
    batch = 3
    log_probs = ctc.log_softmax(rng.normal(size=(batch, 8, symbols)) * 2)
    lengths = [frames, max(1, frames - 1), 1]
    mask = np.arange(8)[None, :] < np.array(lengths)[:, None]
    found = ctc.beam_search(log_probs, mask, blank_id, beam=64)
    for b, n in enumerate(lengths):
        probs = labelling_probabilities(log_probs[b, :n], blank_id)
        assert np.isclose(probs[tuple(found[b])], max(probs.values()), rtol=1e-5), (b, found[b])


def test_batched_beam_search_sums_paths_like_the_reference():
    """Repeats, a blank between equal labels and prefix merging: 'a a' needs a blank, and
    two ways of spelling 'a' outweigh the single best path."""
    log_probs = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))
    assert ctc.beam_search(log_probs[None], np.ones((1, 2), bool), 0, beam=4) == [[1]]
    repeat = np.log(np.array([[0.05, 0.95], [0.9, 0.1], [0.05, 0.95]]))  # a _ a
    assert ctc.beam_search(repeat[None], np.ones((1, 3), bool), 0, beam=4) == [[1, 1]]


def test_batched_beam_search_agrees_with_the_reference_on_a_large_vocabulary():
    """Beam 8 over 40 symbols and 30 frames, random peaked outputs: the same labelling as the
    NumPy reference for every sequence (ties aside, which random logits do not make)."""
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(12, 30, 40)) * 4
    logits[..., 39] += 3.0  # a blank-heavy output, as trained models give
    log_probs = ctc.log_softmax(logits)
    mask = np.arange(30)[None, :] < rng.integers(5, 31, size=12)[:, None]
    found = ctc.beam_search(log_probs, mask, blank_id=39, beam=8)
    want = [ctc.prefix_beam_search(lp[m], 39, 8) for lp, m in zip(log_probs, mask)]
    assert found == want


def test_edit_distance():
    assert metrics.edit_distance("kitten", "sitting") == 3
    assert metrics.edit_distance("", "abc") == 3
    assert metrics.edit_distance(["a", "b"], ["a", "b"]) == 0


def test_normalized_levenshtein_is_micro_averaged():
    """(N − D) / N over the whole set: a long phrase weighs more than a short one."""
    refs, hyps = ["abcdefghij", "ab"], ["abcdefghij", "xy"]
    assert metrics.normalized_levenshtein(refs, hyps) == pytest.approx((12 - 2) / 12)
    assert metrics.normalized_levenshtein(["ab"], ["abcd"]) == 0.0
    assert metrics.normalized_levenshtein(["ab"], ["abcdef"]) == -1.0
    with pytest.raises(ValueError, match="references"):
        metrics.normalized_levenshtein(["a"], [])


def test_word_error_rate_and_top_k():
    assert metrics.word_error_rate([["hello", "my", "name"]], [["hello", "name"]]) == pytest.approx(
        1 / 3
    )
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    ids = np.array([1, 1, 0])
    assert metrics.top_k_accuracy(logits, ids, 1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(logits, ids, 2) == pytest.approx(2 / 3)
    assert metrics.top_k_accuracy(logits, ids, 3) == 1.0
    assert metrics.top_k_accuracy(logits, ids, 1, example_mask=np.array([1, 0, 0])) == 1.0
