#!/usr/bin/env bash
# Runs the whole experiment programme of docs/RESULTS.md with the CTR runner.
#
# Usage (from anywhere; the script works from the repository root):
#
#   examples/ctr/research/reproduce.sh        # everything, 1 job at a time
#   DATA_DIR=.data JOBS=6 BUDGET_S=420 HARD_S=520 examples/ctr/research/reproduce.sh
#   SMOKE=1 PYTHON=.venv/bin/python OUT_DIR=/tmp/smoke examples/ctr/research/reproduce.sh
#
# Every job is one `python -m examples.ctr compare ...` (one dataset, backbone,
# batch size and optimizer group) in its own workdir OUT_DIR/<tag>/, where
# <tag> = <dataset>[-<negatives>]-<model>-b<batch>[-<group>][@<variant>]; the
# summary merges the groups of one experiment and keeps variants apart. A
# workdir holds
# results.json (every run, rewritten after every epoch), table.txt, the plots,
# log.txt (one line per epoch and run), command.txt (the exact command) and
# wall_time.txt ("<seconds> s rc=<exit code>"; rc 124 = cut at HARD_S). At the
# end, examples/ctr/research/summarize_results.py writes OUT_DIR/SUMMARY.md and
# OUT_DIR/summary.json (alphas chosen on validation, E1..E4 test AUC, shape
# checks).
#
# Jobs start in priority order (headline first), JOBS at a time. No job
# starts after BUDGET_S seconds; a job still running at HARD_S seconds is
# stopped (its finished epochs stay in its results.json, marked partial by
# the summary). Priorities:
#   1  Amazon Sports/Beauty/Toys, DNN, batch 256 and 2048: adam, meda, sam
#      (3 seeds), adamw and adam_ar (alpha grid on seed 0, then seeds 1, 2 at
#      the alpha chosen on validation)
#   2  Amazon Books (long tail), DNN and WDL, popularity negatives; DNN with
#      uniform negatives as the contrast; batch 2048
#   3  WDL, xDeepFM, WuKong on the three Amazon sets, batch 2048, 1 seed
#   4  Adagrad and AdagradAR, DNN, the three Amazon sets, batch 2048
#   5  MovieLens-100k, Frappe, iPinYou sample, DNN, batch 2048 and 256
#   6  Variants: lazy moments (adam_ar_lazy); a finer alpha grid at batch
#      256; the paper's per-step alpha grid; filtering rare IDs (min_count)
#      on Amazon Books
#   7  Amazon Books DNN at batch 256; normal-init contrast on Sports
#   8  touch-gap statistics (CPU only)
#   9  where the gain over AdamW comes from, batch 256 on Beauty and Toys
#      (DNN, alpha 1/epoch, 3 seeds): moment-decay and first-touch
#      variants, bucket substitution (AR on the rarest k of 5 user buckets,
#      k = 0..5, and k = 5 per field), Adagrad at lr 0.03 with initial
#      accumulator 1e-6, filtering rare users (min count 5, 7, 10),
#      normal-init contrast
#  10  moment-decay and first-touch variants and lazy moments at alpha
#      10/epoch on Sports (where MEDA beats AdamAR); MEDA and SAM on Books
#      with WDL; Books DNN at 256: AdamW below its grid edge, seeds 1, 2;
#      Adagrad at lr 0.03 / accumulator 1e-6 at batch 2048; the synthetic
#      tail (min_count 1, 5, 20: which rare IDs keep a row)
#  11  decay on read (adam_ar_decay_on_read: the AR decay before the forward
#      pass) on the synthetic tail (min_count 1, 5; lazy moments at
#      min_count 1), Books DNN at 2048, Sports DNN at 256
#
# Alphas are stated per epoch (--alpha-per-epoch: a run uses alpha /
# steps_per_epoch per step, the same total decay per epoch at any batch size;
# AdamW gets weight_decay = per-step alpha / lr), except the "paperalpha"
# variant, which uses the paper's per-step grid.
#
# Environment:
#   PYTHON     interpreter (default python3)
#   DATA_DIR   data root with amazon/, amazon-book/, ... (default ../shared/data)
#   OUT_DIR    results root (default docs/results)
#   JOBS       parallel jobs (default 1)
#   BUDGET_S   no job starts after this many seconds (default 480)
#   HARD_S     running jobs are stopped at this many seconds (default
#              BUDGET_S + 60)
#   EPOCHS     epochs per run (default 4; 1 with SMOKE=1)
#   PRIORITIES comma-separated priorities to run (default 1,...,11)
#   ONLY       extended regex: run only jobs whose tag matches
#   SMOKE      1: a quick end-to-end check: 1 epoch, 2 alphas, seed 0 and
#              confirm seed 1, every split cut to SUBSAMPLE examples
#   SUBSAMPLE  examples kept per split with SMOKE=1 (default 3000)
#   DRY_RUN    1: print the jobs (tag and command) and exit
# On a GPU, several jobs share one device: XLA_PYTHON_CLIENT_PREALLOCATE
# (default false) and XLA_PYTHON_CLIENT_MEM_FRACTION (default 0.12) are set
# unless given.

set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../../.." || exit 1

PYTHON=${PYTHON:-python3}
DATA_DIR=${DATA_DIR:-../shared/data}
OUT_DIR=${OUT_DIR:-docs/results}
JOBS=${JOBS:-1}
BUDGET_S=${BUDGET_S:-480}
HARD_S=${HARD_S:-$((BUDGET_S + 60))}
SMOKE=${SMOKE:-0}
PRIORITIES=${PRIORITIES:-1,2,3,4,5,6,7,8,9,10,11}
ONLY=${ONLY:-}
DRY_RUN=${DRY_RUN:-0}
if [[ $SMOKE == 1 ]]; then
  EPOCHS=${EPOCHS:-1}
  SUBSAMPLE=${SUBSAMPLE:-3000}
else
  EPOCHS=${EPOCHS:-4}
fi
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.12}
export PYTHONUNBUFFERED=1

# Alpha grids. Per epoch: 10^-2.5 .. 10^0.5 in steps of 10^0.5 (a per-epoch
# alpha of 1 wipes a row unseen for one epoch). Finer: steps of 10^0.25.
# The paper's per-step grid: 10^-6.5 .. 10^-1.
GRID=0.00316228,0.01,0.0316228,0.1,0.316228,1,3.16228
FINE_GRID=0.01,0.0177828,0.0316228,0.0562341,0.1,0.177828,0.316228,0.562341,1
PAPER_GRID=3.16228e-07,1e-06,3.16228e-06,1e-05,3.16228e-05,0.0001,0.000316228,0.001,0.00316228,0.01,0.0316228,0.1
SEEDS=0,1,2
GRID_SEEDS=0
CONFIRM=1,2
if [[ $SMOKE == 1 ]]; then
  GRID=0.01,0.316228
  FINE_GRID=$GRID
  PAPER_GRID=1e-05,0.001
  SEEDS=0,1
  CONFIRM=1
fi

TAGS=()
PRIOS=()
CMDS=()

# quote ARGS... : a shell command line (args single-quoted where needed).
quote() {
  local arg out=()
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then
      out+=("$arg")
    else
      out+=("'${arg//\'/\'\\\'\'}'")
    fi
  done
  echo "${out[*]}"
}

# add PRIORITY TAG ARGS... : one compare job (ARGS go to the runner).
add() {
  local prio=$1 tag=$2
  shift 2
  local cmd=("$PYTHON" -m examples.ctr compare --data-path "$DATA_DIR"
    --workdir "$OUT_DIR/$tag" --name "$tag" --epochs "$EPOCHS"
    --no-checkpoint --no-progress "$@")
  if [[ $SMOKE == 1 ]]; then
    cmd+=(--subsample "$SUBSAMPLE")
  fi
  TAGS+=("$tag")
  PRIOS+=("$prio")
  CMDS+=("$(quote "${cmd[@]}")")
}

# add_groups PRIORITY TAG_PREFIX GROUPS ARGS... : one job per optimizer group
# (base: adam, meda, sam with all seeds; adamw, adam_ar, adam_ar_lazy: the
# per-epoch grid on seed 0, then the confirm seeds at the chosen alpha).
add_groups() {
  local prio=$1 prefix=$2 groups=$3
  shift 3
  local group
  for group in ${groups//,/ }; do
    case $group in
      base)
        add "$prio" "$prefix-base" --optimizers adam,meda,sam \
          --seeds "$SEEDS" "$@" ;;
      adam)
        add "$prio" "$prefix-adam" --optimizers adam --seeds "$SEEDS" "$@" ;;
      *)
        add "$prio" "$prefix-$group" --optimizers "$group" --alphas "$GRID" \
          --alpha-per-epoch --seeds "$GRID_SEEDS" --confirm-seeds "$CONFIRM" \
          "$@" ;;
    esac
  done
}

AMAZON=(amazon-sports amazon-beauty amazon-toys)
POP='{"negatives": "popularity"}'
UNI='{"negatives": "uniform"}'

# 1. Headline: Amazon DNN, both batch sizes (longest jobs first).
for batch in 256 2048; do
  for ds in "${AMAZON[@]}"; do
    add_groups 1 "$ds-dnn-b$batch" adam_ar,adamw,base \
      --dataset "$ds" --model dnn --batch-size "$batch"
  done
done

# 2. Amazon Books, the long tail.
for model in dnn wdl; do
  add_groups 2 "amazon-book-popularity-$model-b2048" adam_ar,adamw,base \
    --dataset amazon-book --dataset-options "$POP" --model "$model" \
    --batch-size 2048
done
add_groups 2 amazon-book-uniform-dnn-b2048 adam_ar,adamw,adam \
  --dataset amazon-book --dataset-options "$UNI" --model dnn --batch-size 2048

# 3. The other backbones on Amazon, 1 seed.
for model in wdl xdeepfm wukong; do
  for ds in "${AMAZON[@]}"; do
    add 3 "$ds-$model-b2048" --dataset "$ds" --model "$model" \
      --batch-size 2048 --optimizers adam,adamw,meda,sam,adam_ar \
      --alphas "$GRID" --alpha-per-epoch --seeds "$GRID_SEEDS"
  done
done

# 4. Adagrad family on Amazon, DNN.
for ds in "${AMAZON[@]}"; do
  add 4 "$ds-dnn-b2048-adagrad" --dataset "$ds" --model dnn \
    --batch-size 2048 --optimizers adagrad,adagrad_ar --alphas "$GRID" \
    --alpha-per-epoch --seeds "$GRID_SEEDS" --confirm-seeds "$CONFIRM"
done

# 5. Smaller confirmations, DNN.
for ds in movielens-100k frappe ipinyou-sample; do
  for batch in 2048 256; do
    add 5 "$ds-dnn-b$batch" --dataset "$ds" --model dnn --batch-size "$batch" \
      --optimizers adam,adamw,meda,sam,adam_ar --alphas "$GRID" \
      --alpha-per-epoch --seeds "$GRID_SEEDS" --confirm-seeds "$CONFIRM"
  done
done

# 6. Variants where a baseline may beat AdamAR.
for batch in 2048 256; do
  for ds in "${AMAZON[@]}"; do
    add_groups 6 "$ds-dnn-b$batch" adam_ar_lazy \
      --dataset "$ds" --model dnn --batch-size "$batch"
  done
done
add_groups 6 "amazon-book-popularity-dnn-b2048" adam_ar_lazy \
  --dataset amazon-book --dataset-options "$POP" --model dnn --batch-size 2048
add 6 amazon-sports-dnn-b256@finegrid --dataset amazon-sports --model dnn \
  --batch-size 256 --optimizers adamw,adam_ar --alphas "$FINE_GRID" \
  --alpha-per-epoch --seeds "$GRID_SEEDS"
add 6 amazon-sports-dnn-b2048@paperalpha --dataset amazon-sports --model dnn \
  --batch-size 2048 --optimizers adam,adamw,adam_ar --alphas "$PAPER_GRID" \
  --seeds "$GRID_SEEDS"
for min_count in 2 5; do
  add 6 "amazon-book-popularity-dnn-b2048@mincount$min_count" \
    --dataset amazon-book \
    --dataset-options "{\"negatives\": \"popularity\", \"min_count\": $min_count}" \
    --model dnn --batch-size 2048 --optimizers adam,adamw,adam_ar \
    --alphas "$GRID" --alpha-per-epoch --seeds "$GRID_SEEDS"
done

# 7. Expensive extras. Books at batch 256 on the 3-point grid that the other
# backbones use.
AR_GRID=0.316228,1,3.16228
[[ $SMOKE == 1 ]] && AR_GRID=$GRID
BOOK256=(--dataset amazon-book --dataset-options "$POP" --model dnn
  --batch-size 256)
add 7 amazon-book-popularity-dnn-b256-base "${BOOK256[@]}" \
  --optimizers adam,meda --seeds "$GRID_SEEDS"
for group in adam_ar adam_ar_lazy; do
  add 7 "amazon-book-popularity-dnn-b256-$group" "${BOOK256[@]}" \
    --optimizers "$group" --alphas "$AR_GRID" --alpha-per-epoch \
    --seeds "$GRID_SEEDS"
done
add 7 amazon-book-popularity-dnn-b256-adamw "${BOOK256[@]}" \
  --optimizers adamw,sam --alphas "$AR_GRID" --alpha-per-epoch \
  --seeds "$GRID_SEEDS"
add 7 amazon-sports-dnn-b256@normalinit --dataset amazon-sports --model dnn \
  --batch-size 256 --model-options '{"embedding_init": "normal"}' \
  --optimizers adam,meda,adam_ar --alphas "$GRID" --alpha-per-epoch \
  --seeds "$GRID_SEEDS"

# 9. Batch 256: where does AdamAR's gain over AdamW come from, and what moves
# Adam's fall.
for ds in amazon-beauty amazon-toys; do
  B256=(--dataset "$ds" --model dnn --batch-size 256 --alpha-per-epoch)
  add 9 "$ds-dnn-b256-variants" "${B256[@]}" \
    --optimizers adam_ar_decay_moments --alphas 1 --seeds "$SEEDS"
  add 9 "$ds-dnn-b256-variants@normalinit" "${B256[@]}" \
    --optimizers adam,adam_ar,adam_ar_first_touch --alphas 1 \
    --seeds "$SEEDS" --model-options '{"embedding_init": "normal"}'
  for k in 0 1 2 3 4 5; do
    add 9 "$ds-dnn-b256-bucketsub@k$k" "${B256[@]}" --optimizers bucket_sub \
      --ar-buckets "$k" --alphas 1 --seeds "$SEEDS"
  done
  for field in item item_attributes history; do
    add 9 "$ds-dnn-b256-bucketsub-$field@k5" "${B256[@]}" \
      --bucket-field "$field" --optimizers bucket_sub --ar-buckets 5 \
      --alphas 1 --seeds "$SEEDS"
  done
  add 9 "$ds-dnn-b256-adagrad" "${B256[@]}" --optimizers adagrad,adagrad_ar \
    --alphas 0.1,0.316228,1,3.16228 --seeds "$GRID_SEEDS" \
    --confirm-seeds "$CONFIRM" --learning-rate 0.03 \
    --adagrad-initial-accumulator 1e-6
done
for min_count in 5 7 10; do
  add 9 "amazon-beauty-dnn-b256-filter-user$min_count" --dataset amazon-beauty \
    --model dnn --batch-size 256 --alpha-per-epoch --optimizers adam,adam_ar \
    --alphas 1 --seeds "$SEEDS" \
    --dataset-options "{\"min_count_fields\": {\"user\": $min_count}}"
done
add 9 amazon-beauty-dnn-b256@normalinit --dataset amazon-beauty --model dnn \
  --batch-size 256 --alpha-per-epoch --optimizers adam,adamw,meda,adam_ar \
  --alphas 1 --seeds "$SEEDS" --model-options '{"embedding_init": "normal"}'

# 10. Where MEDA beats AdamAR (Sports): the variants
# of priority 9 and lazy moments past the grid's edge (3.16/epoch was chosen).
for batch in 256 2048; do
  SPORTS=(--dataset amazon-sports --model dnn --batch-size "$batch"
    --alpha-per-epoch)
  add 10 "amazon-sports-dnn-b$batch-variants" "${SPORTS[@]}" \
    --optimizers adam_ar_decay_moments,adam_ar_first_touch --alphas 1 \
    --seeds "$SEEDS"
  add 10 "amazon-sports-dnn-b$batch-lazyhi" "${SPORTS[@]}" \
    --optimizers adam_ar_lazy --alphas 10 --seeds "$SEEDS"
done
add 10 amazon-book-popularity-wdl-b2048-medasam --dataset amazon-book \
  --dataset-options "$POP" --model wdl --batch-size 2048 \
  --optimizers meda,sam --seeds "$SEEDS"
add 10 amazon-book-popularity-dnn-b256-adamwlow "${BOOK256[@]}" \
  --optimizers adamw --alphas 0.0316228,0.1 --alpha-per-epoch \
  --seeds "$GRID_SEEDS"
add 10 amazon-book-popularity-dnn-b256-seeds12 "${BOOK256[@]}" \
  --optimizers adam,adam_ar --alphas 1 --alpha-per-epoch --seeds "$CONFIRM"
for ds in "${AMAZON[@]}"; do
  add 10 "$ds-dnn-b2048@adagrad-lr0.03-acc1e-6" --dataset "$ds" --model dnn \
    --batch-size 2048 --optimizers adagrad,adagrad_ar --alphas "$AR_GRID" \
    --alpha-per-epoch --seeds "$GRID_SEEDS" --confirm-seeds "$CONFIRM" \
    --learning-rate 0.03 --adagrad-initial-accumulator 1e-6
done
# The synthetic tail: min_count decides which rare values keep a row (1: all,
# the rarest touched about once per epoch; 20: none seen < 20 times).
for min_count in 1 5 20; do
  add 10 "synthetic-mincount$min_count-dnn-b512" --dataset synthetic \
    --dataset-options "{\"min_count\": $min_count}" --model dnn \
    --batch-size 512 --optimizers adam,meda,adamw,adam_ar \
    --alphas "${AR_GRID},10" --alpha-per-epoch --seeds "$GRID_SEEDS" \
    --confirm-seeds "${CONFIRM%%,*}"
done

# 11. The decay moved before the forward pass (decay on read),
# where AdamAR fails (the synthetic tail of IDs seen about once per epoch)
# and where MEDA beats it (Sports at 256), and on Books.
add 11 synthetic-mincount1-dnn-b512-readdecay --dataset synthetic \
  --dataset-options '{"min_count": 1}' --model dnn --batch-size 512 \
  --optimizers adam_ar_decay_on_read,adam_ar_lazy --alphas "${AR_GRID},10" \
  --alpha-per-epoch --seeds "$GRID_SEEDS" --confirm-seeds "${CONFIRM%%,*}"
add 11 synthetic-mincount5-dnn-b512-readdecay --dataset synthetic \
  --dataset-options '{"min_count": 5}' --model dnn --batch-size 512 \
  --optimizers adam_ar_decay_on_read --alphas "${AR_GRID},10" \
  --alpha-per-epoch --seeds "$GRID_SEEDS" --confirm-seeds "${CONFIRM%%,*}"
add 11 amazon-book-popularity-dnn-b2048-readdecay --dataset amazon-book \
  --dataset-options "$POP" --model dnn --batch-size 2048 \
  --optimizers adam_ar_decay_on_read --alphas "$AR_GRID" --alpha-per-epoch \
  --seeds "$GRID_SEEDS" --confirm-seeds "$CONFIRM"
add 11 amazon-sports-dnn-b256-readdecay --dataset amazon-sports --model dnn \
  --batch-size 256 --optimizers adam_ar_decay_on_read --alphas 1 \
  --alpha-per-epoch --seeds "$SEEDS"

# 8. Touch gaps (CPU).
for spec in "amazon-sports|{}" "amazon-book|$POP" "amazon-book|$UNI"; do
  ds=${spec%%|*}
  opts=${spec#*|}
  variant=$(printf '%s' "$opts" | tr -dc 'a-z' | sed 's/negatives//')
  tag="touch-gaps-$ds${variant:+-$variant}"
  TAGS+=("$tag")
  PRIOS+=(8)
  CMDS+=("$(quote env JAX_PLATFORMS=cpu "$PYTHON" -m \
    examples.ctr.research.touch_gaps --dataset "$ds" --data-path "$DATA_DIR" \
    --dataset-options "$opts" --batch-sizes 2048,256 --fields item,user \
    --epochs 2 --json "$OUT_DIR/$tag/touch_gaps.json")")
done

# Select the jobs.
SELECTED=()
for i in "${!TAGS[@]}"; do
  if [[ ",$PRIORITIES," != *",${PRIOS[$i]},"* ]]; then continue; fi
  if [[ -n $ONLY && ! ${TAGS[$i]} =~ $ONLY ]]; then continue; fi
  SELECTED+=("$i")
done
# Stable sort by priority.
mapfile -t SELECTED < <(for i in "${SELECTED[@]}"; do
  echo "${PRIOS[$i]} $i"; done | sort -s -n -k1,1 | cut -d' ' -f2)

if [[ $DRY_RUN == 1 ]]; then
  for i in "${SELECTED[@]}"; do
    echo "P${PRIOS[$i]} ${TAGS[$i]}: ${CMDS[$i]}"
  done
  exit 0
fi

mkdir -p "$OUT_DIR"
START=$(date +%s)
elapsed() { echo $(($(date +%s) - START)); }
log() { echo "[$(printf '%4d' "$(elapsed)")s] $*"; }

# Fail fast on a wrong DATA_DIR (and build the dataset caches once).
if ! "$PYTHON" - "$DATA_DIR" <<'EOF'
import sys
from examples.ctr.data import registry
root = sys.argv[1]
for name, opts in [("amazon-sports", {}), ("amazon-beauty", {}),
                   ("amazon-toys", {}), ("amazon-book", {"negatives": "popularity"}),
                   ("amazon-book", {"negatives": "uniform"}),
                   ("movielens-100k", {}), ("frappe", {}), ("ipinyou-sample", {})]:
  ds = registry.load_dataset(name, root, **opts)
  print(f"data: {name} {opts or ''} train {len(ds.train)}", flush=True)
EOF
then
  echo "cannot load the data under DATA_DIR=$DATA_DIR" >&2
  exit 2
fi
"$PYTHON" -c 'import jax; print("jax", jax.__version__, jax.devices())'
log "${#SELECTED[@]} jobs, JOBS=$JOBS, BUDGET_S=$BUDGET_S, HARD_S=$HARD_S," \
  "EPOCHS=$EPOCHS, SMOKE=$SMOKE, OUT_DIR=$OUT_DIR"

run_job() {
  local tag=$1 cmd=$2 dir="$OUT_DIR/$1"
  mkdir -p "$dir"
  printf '%s\n' "$cmd" >"$dir/command.txt"
  local remaining=$((HARD_S - $(elapsed)))
  ((remaining < 1)) && remaining=1
  local t0 t1 rc
  t0=$(date +%s.%N)
  eval "timeout --signal=TERM --kill-after=15 $remaining $cmd" \
    >"$dir/log.txt" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  local wall
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  echo "$wall s rc=$rc" >"$dir/wall_time.txt"
  rm -rf "$dir/runs"
  local status=ok
  if [[ $rc == 124 || $rc == 137 ]]; then
    status="STOPPED at HARD_S"
  elif [[ $rc != 0 ]]; then
    status="FAILED (see $dir/log.txt)"
  fi
  log "done $tag: $status, ${wall}s"
  if [[ $rc != 0 ]]; then tail -n 5 "$dir/log.txt" | sed 's/^/    /'; fi
}

SKIPPED=()
for n in "${!SELECTED[@]}"; do
  i=${SELECTED[$n]}
  while (($(jobs -rp | wc -l) >= JOBS)); do wait -n; done
  if (($(elapsed) >= BUDGET_S)); then
    for j in "${SELECTED[@]:n}"; do SKIPPED+=("${TAGS[$j]}"); done
    break
  fi
  log "start P${PRIOS[$i]} ${TAGS[$i]}"
  run_job "${TAGS[$i]}" "${CMDS[$i]}" &
done
wait
if ((${#SKIPPED[@]})); then
  log "budget reached; not started: ${SKIPPED[*]}"
  printf '%s\n' "${SKIPPED[@]}" >"$OUT_DIR/not_started.txt"
fi

"$PYTHON" -m examples.ctr.research.summarize_results "$OUT_DIR" \
  --out "$OUT_DIR/SUMMARY.md" --json "$OUT_DIR/summary.json" >/dev/null
log "summary: $OUT_DIR/SUMMARY.md"
