#!/usr/bin/env bash
# Train the bundled `cpu`-preset weights on the motion-capture library, end to end and seeded:
#   library (takes.csv: CMU and HDM05 takes, split by performer)
#   -> the real DHP19 rig, cameras 2 and 3, a person, placement and sensor drawn per recording
#   -> ANN, hybrid and pure SNN on two CPU cores, warm-started from the weights of PREVIOUS
#   -> evaluation on the held-out performers -> weights/.
# Usage: LIBRARY=path/to/library scripts/train_library_weights.sh  (docs/training.md)
# Resumable: generation skips finished recordings and training continues its stages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LIBRARY=${LIBRARY:?set LIBRARY to the motion-capture library folder (docs/training.md)}
DATA=${DATA:-data/library}
RUN=${RUN:-runs/library_cpu}
PREVIOUS=${PREVIOUS:-d611f40}         # commit whose weights/ start the training
NO_PERSON_AEDAT4=${NO_PERSON_AEDAT4:-} # real recordings without a person for the evaluation
WEIGHTS=${WEIGHTS:-weights}
GENERATE=(--library "$LIBRARY" --out "$DATA" --cameras 2 3 --max-seconds 10 --quiet)

start=$(date +%s)
mkdir -p runs/previous
for name in hybrid_cpu pure_snn_cpu; do
  [ -f "runs/previous/$name.pt" ] || git show "$PREVIOUS:weights/$name.pt" > "runs/previous/$name.pt"
done
echo "== generate: the test split, and every other training take of the first classes and"
echo "   every fourth of the rest (what two CPU cores render in about 45 minutes)"
( $PY -m hybrid_pose_ros.tools.generate_data "${GENERATE[@]}" --split test --shard 0/2 &&
  $PY -m hybrid_pose_ros.tools.generate_data "${GENERATE[@]}" --split train --shard 0/8 ) &
first=$!
$PY -m hybrid_pose_ros.tools.generate_data "${GENERATE[@]}" --split test --shard 1/2
$PY -m hybrid_pose_ros.tools.generate_data "${GENERATE[@]}" --split train --shard 4/8
$PY -m hybrid_pose_ros.tools.generate_data "${GENERATE[@]}" --split train --shard 2/4 \
  --max-recordings 15
wait "$first"
echo "== train ($(( $(date +%s) - start )) s so far)"
TRAIN=(--config config/train_library_cpu.yaml --resume --data "$DATA" --out-dir "$RUN"
       --set init_ann="$RUN/ann.pt")
# the ANN's first four epochs at lr 1e-4, the rest of every stage as configured
$PY -m hybrid_pose_ros.tools.train "${TRAIN[@]}" --stage ann --set ann.epochs=4 \
  --set ann.lr=1e-4 --set ann.max_minutes=15
$PY -m hybrid_pose_ros.tools.train "${TRAIN[@]}"
echo "== continue in $RUN/continued ($(( $(date +%s) - start )) s so far): the ANN to epoch 30"
echo "   at lr 3e-4 and to 40 at 1e-4, then the hybrid from the first one"
FIRST=$RUN
RUN=$FIRST/continued
mkdir -p "$RUN"
cp -n "$FIRST"/ann.pt "$FIRST"/ann_state.pt "$FIRST"/ann_log.csv "$RUN"/
MORE=(--config config/train_library_cpu.yaml --resume --data "$DATA" --out-dir "$RUN")
$PY -m hybrid_pose_ros.tools.train "${MORE[@]}" --stage ann --set ann.epochs=30 \
  --set ann.max_minutes=55
$PY -m hybrid_pose_ros.tools.train "${MORE[@]}" --stage ann --set ann.epochs=40 \
  --set ann.lr=1e-4 --set ann.max_minutes=15
$PY -m hybrid_pose_ros.tools.train "${MORE[@]}" --stage hybrid \
  --set init_hybrid="$FIRST/hybrid.pt" --set init_ann="$RUN/ann.pt"
# the pure SNN stays the first one: ten more minutes raised its validation error (91.6 -> 101.9 px)
cp "$FIRST/pure_snn.pt" "$RUN/pure_snn.pt"
echo "== evaluate ($(( $(date +%s) - start )) s so far)"
aedat=()
[ -z "$NO_PERSON_AEDAT4" ] || aedat=(--no-person-aedat4 $NO_PERSON_AEDAT4)
$PY -m hybrid_pose_ros.tools.evaluate --run-dir "$RUN" --data "$DATA" --cameras 2 3 \
  --device cpu --quiet --no-person "${aedat[@]}"
mkdir -p "$WEIGHTS"
$PY -c "from hybrid_pose_ros.model.checkpoint import export_checkpoint as e
e('$RUN/hybrid.pt', '$WEIGHTS/hybrid_cpu.pt'); e('$RUN/pure_snn.pt', '$WEIGHTS/pure_snn_cpu.pt')"
cp "$RUN/evaluation/evaluation.json" "$WEIGHTS/evaluation.json"
cp "$RUN/evaluation/mpjpe_per_step.png" "$WEIGHTS/mpjpe_per_step.png"
echo "== done in $(( $(date +%s) - start )) s: $WEIGHTS/"
