"""Evaluation: counts summed over batches give the set's metric; padding examples count for
nothing; the vocabulary decides the metric."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from aslx import vocab as vocab_lib
from aslx.decoding import evaluate, metrics
from aslx.model import inference

CHARS = vocab_lib.CharVocab(tuple("abc"))  # ids 0, 1, 2; blank 3
BLANK = CHARS.blank_id


def ctc_batch(paths, labels, real):
    """A host batch whose forward returns ``paths`` as best paths (one-hot log-probs)."""
    paths = np.asarray(paths)
    width = max(len(x) for x in labels)
    return {
        "landmarks": paths,  # the fake forward's input: it returns these as best paths
        "frame_mask": np.ones(paths.shape, bool),
        "labels": np.array([x + [-1] * (width - len(x)) for x in labels], np.int32),
        "label_mask": np.array([[1] * len(x) + [0] * (width - len(x)) for x in labels], bool),
        "example_mask": np.asarray(real, bool),
    }


def fake_ctc_forward(params, batch):
    log_probs = jnp.log(jnp.eye(4)[batch["landmarks"]] * 0.97 + 0.01)
    return {"best_path": batch["landmarks"], "log_probs": log_probs}


def run(batches, task="ctc", vocab=CHARS, forward=fake_ctc_forward, beam=0):
    return evaluate.evaluate(
        forward,
        None,
        batches,
        task=task,
        vocab=vocab,
        to_device=lambda b: {k: jnp.asarray(v) for k, v in b.items()},
        beam=beam,
    )


@pytest.mark.parametrize("beam", [0, 4])
def test_ctc_score_is_the_micro_normalized_levenshtein(beam):
    b = BLANK
    batches = [
        ctc_batch([[0, 0, b, 1], [2, b, 2, 2]], [[0, 1], [2, 2]], [1, 1]),  # exact, exact
        ctc_batch([[1, 1, 1, 1], [0, 1, 2, 0]], [[0, 1, 2], [0]], [1, 0]),  # 'b' vs 'abc'; pad
    ]
    scores = run(batches, beam=beam)
    expected = metrics.normalized_levenshtein([[0, 1], [2, 2], [0, 1, 2]], [[0, 1], [2, 2], [1]])
    assert scores["normalized_levenshtein"] == pytest.approx(expected)
    assert scores["examples"] == 3


def test_glosses_are_scored_by_word_error_rate():
    glosses = vocab_lib.ClassVocab(("hello", "you", "name"))  # CTC blank = 3
    batch = ctc_batch([[0, 3, 1, 1]], [[0, 2]], [1])
    scores = run([batch], vocab=glosses)
    assert scores == {"wer": pytest.approx(0.5), "examples": 1, "empty_predictions": 0}


def test_examples_decoded_to_nothing_are_counted():
    """A CTC model that emits only the blank decodes every clip to no label: the count (padding
    examples left out) that lets the trainer say so."""
    b = BLANK
    batches = [
        ctc_batch([[b, b, b], [0, b, 1]], [[0, 1], [0, 1]], [1, 1]),  # nothing, 'ab'
        ctc_batch([[b, b, b], [b, b, b]], [[2], [2]], [1, 0]),  # nothing; padding
    ]
    scores = run(batches)
    assert scores["empty_predictions"] == 2 and scores["examples"] == 3
    # The trainer's warning reads it from the results file's selected weights.
    results = evaluate.final_scores({"val": {"raw": scores, "ema": scores}}, "raw")
    assert not evaluate.decodes_nothing(results, "val")
    silent = run([ctc_batch([[b, b], [b, b]], [[0], [1]], [1, 1])])
    assert silent["empty_predictions"] == silent["examples"] == 2
    results = evaluate.final_scores({"val": {"raw": scores, "ema": silent}}, "ema")
    assert evaluate.decodes_nothing(results, "val")
    assert not evaluate.decodes_nothing(results, "test")  # a split the run did not score
    # Lines of scores leave the counts out, of either variant.
    assert [k for k in results if not evaluate.is_count(k)] == [
        "val/normalized_levenshtein",
        "val/normalized_levenshtein_raw",
        "val/normalized_levenshtein_ema",
    ]


def test_classification_top1_and_top5():
    classes = vocab_lib.ClassVocab(tuple("abcdefg"))
    logits = np.array(
        [
            [9, 1, 0, 0, 0, 0, 0],  # class 0: top-1
            [0, 1, 2, 3, 4, 5, 6],  # class 2: 5th of 7 -> top-5 only
            [0, 1, 2, 3, 4, 5, 6],  # class 0: last -> neither
            [0, 0, 0, 0, 0, 0, 9],  # padding example: ignored
        ],
        np.float32,
    )
    batch = {
        "landmarks": logits,  # the fake forward returns these as class logits
        "labels": np.array([[0], [2], [0], [6]], np.int32),
        "frame_mask": np.ones((4, 2), bool),
        "example_mask": np.array([1, 1, 1, 0], bool),
    }

    def score(batch):
        forward = lambda p, b: {"class_logits": b["landmarks"]}  # noqa: E731
        return run([batch], task="classification", vocab=classes, forward=forward)

    scores = score(batch)
    assert scores["top1"] == pytest.approx(1 / 3) and scores["top5"] == pytest.approx(2 / 3)
    assert scores["examples"] == 3
    # The third clip without a label: not scored.
    batch["label_mask"] = np.array([[True], [True], [False], [True]])
    scores = score(batch)
    assert scores["top1"] == pytest.approx(1 / 2) and scores["top5"] == pytest.approx(2 / 2)
    assert scores["examples"] == 2


def test_clips_shorter_than_the_training_clips_are_counted():
    classes = vocab_lib.ClassVocab(("a", "b"))
    batch = {
        "landmarks": np.array([[1, 0], [0, 1], [1, 0]], np.float32),
        "labels": np.array([[0], [1], [1]], np.int32),
        "frame_mask": np.ones((3, 2), bool),
        "example_mask": np.array([1, 1, 0], bool),
        "record_frames": np.array([1, 30, 1], np.int32),  # the last is padding
    }
    forward = lambda p, b: {"class_logits": b["landmarks"]}  # noqa: E731
    to_device = lambda b: {k: jnp.asarray(v) for k, v in b.items()}  # noqa: E731
    args = dict(task="classification", vocab=classes, to_device=to_device)
    scores = evaluate.evaluate(forward, None, [batch], min_frames=30, **args)
    assert scores["short_examples"] == 1 and scores["top1"] == 1.0
    assert "short_examples" not in evaluate.evaluate(forward, None, [batch], **args)


def test_layout_and_primary_metric_follow_the_vocabulary():
    glosses = vocab_lib.ClassVocab(("x", "y"))
    assert inference.ctc_layout(CHARS) == (4, 3)
    assert inference.ctc_layout(vocab_lib.CharVocab.kaggle()) == (60, 59)
    assert inference.ctc_layout(glosses) == (3, 2)
    assert evaluate.primary_metric("ctc", CHARS) == ("normalized_levenshtein", "max")
    assert evaluate.primary_metric("ctc", glosses) == ("wer", "min")
    assert evaluate.primary_metric("classification", glosses) == ("top1", "max")


def test_raw_or_ema_is_chosen_on_the_metric_and_both_are_reported():
    by_variant = {"raw": {"wer": 0.30, "examples": 8}, "ema": {"wer": 0.25, "examples": 8}}
    assert evaluate.select_weights(by_variant, "wer", "min") == "ema"
    assert evaluate.select_weights(by_variant, "wer", "max") == "raw"
    tie = {"raw": {"top1": 0.5}, "ema": {"top1": 0.5}}
    assert evaluate.select_weights(tie, "top1", "max") == "raw"  # a tie keeps the raw weights
    assert evaluate.flat_scores("val", by_variant, "wer", "min") == {
        "val/wer_raw": 0.30,
        "val/examples_raw": 8,
        "val/wer_ema": 0.25,
        "val/examples_ema": 8,
        "val/wer": 0.25,  # the better variant's: it picks the best checkpoint
    }
    final = evaluate.final_scores({"val": by_variant, "test": by_variant}, "raw")
    assert final["val/wer"] == final["test/wer"] == 0.30
    assert final["test/wer_ema"] == 0.25 and final["val/examples"] == 8
