"""The pretraining loop (Data2vec 2.0), in sections.

Set-up → records (labels unused) → student and decoder → state on the mesh → resume → compile
→ loop (step, log, stop on collapse, checkpoint) → results. The objective lives in
``aslx/objectives/data2vec.py``; the loop, resume and checkpoints are the finetuning program's
(``aslx/training/loop.py``).
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from aslx.augment.recipe import AugmentConfig
from aslx.landmarks import presets
from aslx.model import config as model_config_lib
from aslx.model import model as model_lib
from aslx.objectives import data2vec
from aslx.run import card as card_lib
from aslx.run import checkpoint as checkpoint_lib
from aslx.run import results as results_lib
from aslx.training import config as config_lib
from aslx.training import loop, sharding
from aslx.training import step as step_lib
from aslx.training.loop import TrainingError


def augment_config(config: ml_collections.ConfigDict) -> AugmentConfig | None:
    """The recipe without its label steps: pretraining has no labels to keep aligned."""
    recipe = config_lib.augment_config(config)
    if recipe is None:
        return None
    return dataclasses.replace(recipe, align_ctc_label=False, cutmix_p=0.0)


def train(config: ml_collections.ConfigDict, workdir: str, *, print_fn=print) -> dict:
    """Pretrains as ``config`` says, in ``workdir``; resumes when it holds a checkpoint.

    Returns what ``workdir/results.json`` holds.
    """
    # --- set-up ---------------------------------------------------------------------------
    config_lib.check(config)
    loop.initialize_distributed(config)
    lead = jax.process_index() == 0
    say = print_fn if lead else (lambda *a, **k: None)
    with loop.claimed_workdir(workdir, lead, say) as workdir:
        return _pretrain(config, workdir, lead, say)


def _pretrain(config: ml_collections.ConfigDict, workdir, lead: bool, say) -> dict:
    """:func:`train` in a workdir this process holds."""
    loop.use_compilation_cache(config, say)

    # --- records (labels unused) ----------------------------------------------------------
    records = loop.open_records(config, (config.data.train_split,))
    preset = presets.get(config.data.preset) if config.data.preset else records.preset
    input_config = config_lib.input_config(config, preset)
    normalization = config_lib.normalization(config, records)

    # --- student and decoder --------------------------------------------------------------
    try:
        objective = data2vec.Data2vecConfig(**config.data2vec)
    except ValueError as e:
        raise config_lib.ConfigError(f"config.data2vec: {e}") from None
    model_config = config_lib.model_config(
        config,
        num_landmarks=preset.num_landmarks,
        landmark_channels=normalization.landmark_channels,
    )
    try:
        graphdef, params = data2vec.create(model_config, objective, seed=config.seed)
    except ValueError as e:
        raise config_lib.ConfigError(f"config.data2vec: {e}") from None
    card = card_lib.ModelCard(
        model=model_config,
        vocab=records.vocab,
        preset=preset.name,
        task="pretrain",
        max_frames=config.data.max_frames,
        data2vec=dataclasses.asdict(objective),
        normalization=normalization,
        train_frames=records.frame_summary(),
    )
    loop.write_run_files(workdir, card, config, write=lead)

    # --- state on the mesh, resume --------------------------------------------------------
    mesh = sharding.make_mesh(config.fsdp)
    tx, schedule = config_lib.optimizer_for(config)
    state, state_shardings = loop.place_state(params, tx, mesh, data2vec.teacher_part)
    checkpoints = checkpoint_lib.Checkpointer(workdir / "checkpoints", keep_last=config.keep_last)
    state, start_step, seconds_before = loop.resume(checkpoints, state, say)
    if start_step >= config.total_steps:
        say(f"{workdir}: already trained for {config.total_steps} steps")

    # --- compile --------------------------------------------------------------------------
    step_fn = step_lib.make_train_step(
        data2vec.make_loss(graphdef, objective, preset, augment_config(config), normalization),
        tx,
        ema_decay=lambda step: data2vec.ema_decay(objective, step),
        grad_accum_steps=config.grad_accum_steps,
        teacher_is_ema=True,
        ema_of=data2vec.teacher_part,
    )
    train_step = jax.jit(step_fn, donate_argnums=(0,), out_shardings=(state_shardings, None))

    # --- loop -----------------------------------------------------------------------------
    log = loop.open_log(config, workdir, start_step, say)

    def stop_on_collapse(step: int, metrics: dict) -> None:
        problem = data2vec.collapse_problem(
            step,
            metrics,
            config.collapse_target_std,
            config.collapse_prediction_std,
            config.collapse_after,
        )
        if problem:
            raise TrainingError(problem)

    batches = loop.train_batches(config, records, input_config, start_step)
    model_name = model_config_lib.size_name(config.model.size, model_config)
    say(
        f"pretraining {model_name} ({model_lib.count_params(params):,} parameters with "
        f"the decoder, {preset.name} {preset.num_landmarks} points), {objective.num_masks} masks "
        f"of ratio {objective.mask_ratio} per clip, for {config.total_steps} steps, batch "
        f"{config.batch_size}, on {jax.device_count()} {jax.devices()[0].platform} device(s); "
        f"workdir {workdir}"
    )
    state, step, stopped, seconds = loop.run(
        config=config,
        state=state,
        train_step=train_step,
        batches=batches,
        to_device=sharding.host_to_global(mesh),
        key=jax.random.key(config.seed),
        start_step=start_step,
        checkpoints=checkpoints,
        log=log,
        schedule=schedule,
        seconds_before=seconds_before,
        on_log=stop_on_collapse,
        say=say,
    )
    checkpoints.close()
    if stopped:
        return {loop.STOPPED_AT: step}

    # --- results --------------------------------------------------------------------------
    # Finetuning starts from the student (raw weights); the EMA weights are the teacher.
    results = {
        "steps": step,
        "seconds": seconds,
        "workdir": str(workdir),
        "selected_weights": "raw",
    }
    if lead:
        results_lib.write(workdir, results)
    say(
        f"pretrained for {step} steps; finetune from it with "
        f"--config.init_from={workdir}\ncheckpoints: {checkpoints.directory}\n"
        f"TensorBoard: pip install tensorboard && tensorboard --logdir {workdir / 'tensorboard'}"
    )
    return results
