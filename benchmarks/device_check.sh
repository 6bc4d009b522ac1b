#!/usr/bin/env bash
# The accelerator-scale checks in one run, with one JSON of results.
#
#   bash benchmarks/device_check.sh [OUT_DIR]        # default runs/bench/device_check
#
# On a GPU (at most about 8 minutes on one H100/H200): the small and the large finetuning steps
# at their recipes' batch (256) and max_frames (384) in bfloat16 with cuDNN attention and the
# recipes' remat policies, the small pretraining step (batch 64 x 384: 8 masked copies per
# clip), the augmentation's share of the small step, the length-bucket speedup, and (last) the
# Data2vec target kinds compared downstream on Small (benchmarks/target_kinds.py: a few
# minutes more). On a CPU the same at tiny sizes, in under 3 minutes, without the target kinds
# (at CPU sizes they would rank noise). Each part is a benchmark of its own
# (benchmarks/train_step.py, benchmarks/buckets.py); their JSON files are merged into
# OUT_DIR/device_check.json with the device name. A part that fails is recorded as failed and
# the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/bench/device_check}
mkdir -p "$OUT"
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
BACKEND=$("$PY" -c "import jax; print(jax.default_backend())")
echo "device check on $BACKEND ($("$PY" -c "import jax; print(jax.devices()[0].device_kind)"))"

run() {  # name, command...
  local name=$1
  shift
  echo "--- $name: $*"
  if "$@" --json "$OUT/$name.json"; then echo "ok $name"; else echo "FAILED $name"; fi
}

STEP="$PY benchmarks/train_step.py"
if [ "$BACKEND" = "gpu" ]; then
  GPU="--dtype bfloat16 --steps 5 --rounds 2"
  run finetune_small $STEP --model small --batch 256 --frames 384 $GPU
  run finetune_large $STEP --model large --batch 256 --frames 384 $GPU --no-augment-share
  run pretrain_small $STEP --model small --objective data2vec --batch 64 --frames 384 $GPU \
    --no-augment-share
  run buckets "$PY" benchmarks/buckets.py --batch 64 --steps 60 --phrases 600
  # last, the longest: Small pretrained with each Data2vec target kind, then finetuned
  run target_kinds "$PY" benchmarks/target_kinds.py --model small --dtype bfloat16 --batch 64 \
    --frames 128 --pretrain-steps 200 --finetune-steps 200 --phrases 600
else
  TINY="--steps 2 --rounds 2"
  run finetune_small $STEP --model tiny --batch 8 --frames 64 $TINY
  run finetune_large $STEP --model tiny --batch 8 --frames 64 --compile-only
  run pretrain_small $STEP --model tiny --objective data2vec --batch 4 --frames 64 $TINY \
    --no-augment-share
  run buckets "$PY" benchmarks/buckets.py --batch 8 --steps 16 --rounds 2 --phrases 120
fi

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
import jax

out = Path(sys.argv[1])
device = jax.devices()[0]
merged = {"device": f"{device.platform}: {device.device_kind}", "backend": jax.default_backend()}
for name in ("finetune_small", "finetune_large", "pretrain_small", "buckets", "target_kinds"):
    path = out / f"{name}.json"
    if name == "target_kinds" and jax.default_backend() != "gpu":
        continue
    merged[name] = json.loads(path.read_text()) if path.is_file() else {"failed": True}
(out / "device_check.json").write_text(json.dumps(merged, indent=1) + "\n")
print(f"wrote {out / 'device_check.json'}")
for name in ("finetune_small", "finetune_large", "pretrain_small"):
    r = merged[name]
    if r.get("failed"):
        print(f"{name:<15} FAILED")
        continue
    def shown(key, spec):  # compile-only parts have no timings
        value = r.get(key)
        return "n/a" if value is None else format(value, spec)

    print(
        f"{name:<15} {r['model']:>5} b{r['batch']}x{r['frames']} "
        f"{shown('step_ms', '9.1f')} ms/step {shown('samples_per_s', '9.1f')} samples/s  "
        f"peak {r['peak_bytes'] / 1e9:6.1f} GB  compile {r['compile_seconds']:5.1f} s  "
        f"MFU {shown('mfu', '.1%')}  augment {shown('augment_share', '.1%')}"
    )
b = merged["buckets"]
if not b.get("failed"):
    print(f"buckets         speedup {b['speedup']:.2f}x, padding {b['padding_share']:.1%}")
t = merged.get("target_kinds", {})
if t and not t.get("failed"):
    print(
        f"target kinds    val NL scratch {t['scratch_val']:.4f}, ffn {t['ffn_val']:.4f}, "
        f"residual {t['residual_val']:.4f}"
    )
EOF
