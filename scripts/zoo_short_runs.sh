#!/usr/bin/env bash
# Short, equal-budget CPU training runs of the model zoo, two at a time with one thread each (one core per run),
# so their validation SI-SNRi and training cost can be compared side by side.
#   bash scripts/zoo_short_runs.sh [MINUTES] [EXPERIMENT ...]
# Each run writes outputs/zoo/<experiment>/ (learning_curve.csv, best_model.pt); summarise them with
#   python scripts/summarize_runs.py outputs/zoo --markdown results/zoo_short_runs.md
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-12}
shift || true
experiments=("$@")
if [ ${#experiments[@]} -eq 0 ]; then
  experiments=(convtasnet_small_dm av_convtasnet_dm rtfsnet_tiny_dm iianet_tiny_dm mossformer2_small_dm limuse_dm)
fi
budget=$(printf '00:00:%02d:00' "$minutes")

run() {
  local name=$1
  nice -n 10 python train.py experiment="$name" threads=1 seed=0 trainer.max_time="$budget" \
    data.train.length=1000000 data.val.length=40 trainer.enable_progress_bar=false \
    hydra.run.dir="outputs/zoo/$name" > "outputs/zoo/$name.log" 2>&1 || echo "FAILED: $name (see outputs/zoo/$name.log)"
}

mkdir -p outputs/zoo
lane() {  # every second experiment, starting at $1
  local i
  for ((i = $1; i < ${#experiments[@]}; i += 2)); do run "${experiments[$i]}"; done
}
lane 0 &
lane 1 &
wait
