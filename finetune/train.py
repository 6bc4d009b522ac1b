"""The finetuning loop: one readable function in sections.

Set-up → data and vocabulary → model (warm start, teacher) → state on the mesh → resume →
compile → loop (step, log, evaluate, checkpoint) → final scores. Every piece it calls lives in
the library; this file only wires them together.
"""

from __future__ import annotations

import time

import jax
import ml_collections
import numpy as np

from aslx import processes
from aslx import vocab as vocab_lib
from aslx.decoding import evaluate as evaluate_lib
from aslx.input import pipeline
from aslx.landmarks import presets
from aslx.model import config as model_config_lib
from aslx.model import gate as gate_lib
from aslx.model import inference
from aslx.model import model as model_lib
from aslx.objectives import finetune as objective_lib
from aslx.run import card as card_lib
from aslx.run import checkpoint as checkpoint_lib
from aslx.run import results as results_lib
from aslx.run import source as source_lib
from aslx.training import config as config_lib
from aslx.training import loop, optimizer, sharding, warm_start
from aslx.training import step as step_lib
from aslx.training.loop import TrainingError

RESULTS_FILE = results_lib.RESULTS_FILE
__all__ = ["train", "TrainingError", "RESULTS_FILE"]


def _check_vocab(config, vocab: vocab_lib.Vocab, folder) -> None:
    if config.task == "classification" and not isinstance(vocab, vocab_lib.ClassVocab):
        raise config_lib.ConfigError(
            f"{folder}: holds a character vocabulary, but config.task='classification' needs "
            "classes; use config.task='ctc' for these records"
        )


def _teacher(config, vocab, preset, normalization):
    """(graphdef, params, model config) of the frozen teacher, or Nones."""
    source = config.teacher.workdir or config.teacher.weights
    if not source:
        return None, None, None
    try:
        teacher = source_lib.load_trained(source)
    except (FileNotFoundError, ValueError) as e:
        field = "workdir" if config.teacher.workdir else "weights"
        raise config_lib.ConfigError(f"config.teacher.{field}: {e}") from None
    if teacher.card.vocab != vocab:
        raise config_lib.ConfigError(
            f"teacher {source}: its vocabulary differs from the records' ({config.data.dir})"
        )
    if teacher.card.preset != preset.name:
        raise config_lib.ConfigError(
            f"teacher {source}: reads preset {teacher.card.preset}, this run "
            f"{preset.name}; set config.data.preset={teacher.card.preset}"
        )
    if teacher.card.normalization != normalization:
        raise config_lib.ConfigError(
            f"teacher {source}: normalises its input as {teacher.card.normalization}, this run "
            f"as {normalization}; set config.data's normalization fields to the teacher's"
        )
    return teacher.graphdef, teacher.params, teacher.config


def train(config: ml_collections.ConfigDict, workdir: str, *, print_fn=print) -> dict:
    """Finetunes as ``config`` says, in ``workdir``; resumes when it holds a checkpoint.

    Returns the final metrics (also in ``workdir/results.json``).
    """
    # --- set-up ---------------------------------------------------------------------------
    config_lib.check(config)
    loop.initialize_distributed(config)
    lead = jax.process_index() == 0
    say = print_fn if lead else (lambda *a, **k: None)
    with loop.claimed_workdir(workdir, lead, say) as workdir:
        return _finetune(config, workdir, lead, say)


def _finetune(config: ml_collections.ConfigDict, workdir, lead: bool, say) -> dict:
    """:func:`train` in a workdir this process holds."""
    loop.use_compilation_cache(config, say)

    # --- data and vocabulary --------------------------------------------------------------
    records = loop.open_records(
        config, (config.data.train_split, config.data.eval_split, config.data.test_split)
    )
    vocab = records.vocab
    _check_vocab(config, vocab, records.folder)
    preset = presets.get(config.data.preset) if config.data.preset else records.preset
    input_config = config_lib.input_config(config, preset)
    normalization = config_lib.normalization(config, records)
    ctc_vocab, blank_id = inference.ctc_layout(vocab)

    # --- model, warm start, teacher -------------------------------------------------------
    teacher_graphdef, teacher_params, teacher_config = _teacher(
        config, vocab, preset, normalization
    )
    model_config = config_lib.model_config(
        config,
        num_landmarks=preset.num_landmarks,
        landmark_channels=normalization.landmark_channels,
        ctc_vocab=ctc_vocab if config.task == "ctc" else 0,
        num_classes=vocab.size if config.task == "classification" else 0,
        distill_vocab=teacher_config.ctc_vocab if teacher_config else 0,
    )
    graphdef, params = model_lib.create(model_config, seed=config.seed)
    if config.init_from:
        try:
            source = source_lib.read_source(config.init_from)
        except (FileNotFoundError, ValueError) as e:
            raise config_lib.ConfigError(f"config.init_from: {e}") from None
        record = warm_start.source_record(config.init_from, source)
        warm_start.check_source(workdir, record)  # before anything is written
        params, report = warm_start.warm_start(params, source.params, config.init_keep_layers)
        say(f"init from {config.init_from}: {report.details()}")
    card = card_lib.ModelCard(
        model=model_config,
        vocab=vocab,
        preset=preset.name,
        task=config.task,
        max_frames=config.data.max_frames,
        normalization=normalization,
        train_frames=records.frame_summary(),
    )
    loop.write_run_files(workdir, card, config, write=lead)
    if config.init_from and lead:
        warm_start.keep_source_record(workdir, record)

    # --- state on the mesh ----------------------------------------------------------------
    mesh = sharding.make_mesh(config.fsdp)
    multipliers = {"gate": config.gate.lr_multiplier}
    multipliers |= optimizer.layer_decay_multipliers(model_config.num_layers, config.layer_decay)
    tx, schedule = config_lib.optimizer_for(config, multipliers)
    state, state_shardings = loop.place_state(params, tx, mesh)
    frozen = sharding.shard_params(teacher_params, mesh) if teacher_params is not None else None

    # --- resume ---------------------------------------------------------------------------
    metric_name, metric_mode = evaluate_lib.primary_metric(config.task, vocab)
    eval_metric = f"{config.data.eval_split}/{metric_name}"
    checkpoints = checkpoint_lib.Checkpointer(
        workdir / "checkpoints",
        keep_last=config.keep_last,
        best_metric=eval_metric if config.data.eval_split else None,
        best_mode=metric_mode,
    )
    state, start_step, seconds_before = loop.resume(checkpoints, state, say)
    if start_step >= config.total_steps:
        say(f"{workdir}: already trained for {config.total_steps} steps")

    # --- compile --------------------------------------------------------------------------
    loss_fn = objective_lib.make_loss(
        graphdef,
        objective_lib.Objective(
            task=config.task,
            preset=preset,
            augment=config_lib.augment_config(config),
            blank_id=blank_id,
            label_smoothing=config.label_smoothing,
            kd_weight=config.teacher.kd_weight,
            kd_average=config.teacher.kd_average,
            l0_weight=config.gate.l0_weight,
            temperature=lambda step: config_lib.temperature(config, step),
            normalization=normalization,
        ),
        teacher_graphdef,
    )
    step_fn = step_lib.make_train_step(
        loss_fn, tx, ema_decay=config.ema_decay, grad_accum_steps=config.grad_accum_steps
    )
    train_step = jax.jit(step_fn, donate_argnums=(0,), out_shardings=(state_shardings, None))
    to_device = sharding.host_to_global(mesh)
    # every process compiles the evaluation before any runs it (see aslx.processes)
    forward = processes.CompiledTogether(
        inference.make_forward(graphdef, preset, config.task, normalization), "eval_forward"
    )
    key = jax.random.key(config.seed)

    variants = ("raw", "ema") if config.ema_decay else ("raw",)
    eval_input = config_lib.eval_input_config(config, input_config)

    def evaluate_split(state, split: str) -> dict[str, dict]:
        """Scores of the raw and the EMA weights on one split: ``{variant: metrics}``."""
        return evaluate_lib.evaluate_variants(
            forward,
            state,
            lambda: pipeline.eval_batches(records, split, eval_input),
            variants,
            task=config.task,
            vocab=vocab,
            to_device=to_device,
            beam=config.decode_beam,
        )

    # --- loop -----------------------------------------------------------------------------
    log = loop.open_log(config, workdir, start_step, say)

    eval_seconds = {"total": 0.0}

    def evaluate_during_training(state, step: int) -> dict | None:
        if not config.data.eval_split or (step % config.eval_every and step != config.total_steps):
            return None
        split = config.data.eval_split
        began = time.monotonic()
        scores = evaluate_lib.flat_scores(
            split, evaluate_split(state, split), metric_name, metric_mode
        )
        # What an evaluation costs, so that eval_every and decode_beam can be judged: its
        # seconds, and all evaluations' share of this start's wall time so far.
        seconds = time.monotonic() - began
        eval_seconds["total"] += seconds
        share = eval_seconds["total"] / max(time.monotonic() - started, 1e-9)
        log.write(step, scores | {"eval_seconds": seconds, "eval_share": share}, split="eval")
        say(
            f"step {step:,}: "
            + "  ".join(f"{k} {v:.4f}" for k, v in scores.items() if not evaluate_lib.is_count(k))
            + f"  (evaluated in {seconds:.1f} s; evaluation {share:.0%} of the run so far)"
        )
        return scores

    batches = loop.train_batches(config, records, input_config, start_step)
    model_name = model_config_lib.size_name(config.model.size, model_config)
    say(
        f"training {model_name} ({model_lib.count_params(params):,} parameters, "
        f"{preset.name} {preset.num_landmarks} points) for {config.total_steps} steps, "
        f"batch {config.batch_size}, on {jax.device_count()} {jax.devices()[0].platform} "
        f"device(s); workdir {workdir}"
    )
    started = time.monotonic()
    state, step, stopped, seconds = loop.run(
        config=config,
        state=state,
        train_step=train_step,
        batches=batches,
        to_device=to_device,
        key=key,
        start_step=start_step,
        checkpoints=checkpoints,
        log=log,
        schedule=schedule,
        seconds_before=seconds_before,
        frozen=frozen,
        evaluate=evaluate_during_training,
        say=say,
    )
    if stopped:
        checkpoints.close()
        return {loop.STOPPED_AT: step}

    # --- final scores ---------------------------------------------------------------------
    results = {"steps": step, "seconds": seconds, "workdir": str(workdir)}
    best = checkpoints.best_step()
    if best is not None:
        state, _ = checkpoints.restore(state, best)
        results["best_step"] = best
    checkpoints.close()
    splits = [s for s in (config.data.eval_split, config.data.test_split) if s]
    scores = {split: evaluate_split(state, split) for split in splits}
    # Raw or EMA weights, chosen on the evaluation split (never on test).
    selected = "raw"
    if config.data.eval_split:
        selected = evaluate_lib.select_weights(
            scores[config.data.eval_split], metric_name, metric_mode
        )
    results["selected_weights"] = selected
    results |= evaluate_lib.final_scores(scores, selected)
    if model_config.gate != "none":
        logits = state[evaluate_lib.WEIGHT_VARIANTS[selected]]["gate"]["logits"][...]
        kept = gate_lib.kept(
            np.asarray(logits.addressable_data(0)), model_config.gate_eval_threshold
        )
        results["gate_kept"] = int(kept.sum())
        results["gate_total"] = int(logits.size)
    if lead:
        results_lib.write(workdir, results)
    headline = "  ".join(
        f"{split}/{metric_name} {results[f'{split}/{metric_name}']:.4f}" for split in splits
    )
    say(
        f"final, {'best step ' + str(best) if best is not None else 'step ' + str(step)}, "
        f"{selected} weights: {headline}\n"
        f"checkpoints: {checkpoints.directory} (rerun the same command to resume or extend)\n"
        f"results: {workdir / RESULTS_FILE}\n"
        f"TensorBoard: pip install tensorboard && tensorboard --logdir {workdir / 'tensorboard'}"
    )
    split = config.data.eval_split
    if split and evaluate_lib.decodes_nothing(results, split):
        say(
            f"warning: the selected weights decode every {split} clip to no label at all (the "
            "CTC head emits only the blank): the run has not learnt to emit labels; try another "
            "config.lr, more config.total_steps, or check the labels"
        )
    return results
