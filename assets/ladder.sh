#!/usr/bin/env bash
# docs/experiments.md: the cold start, then the ladder's 30 runs in two lanes of one thread each, then its tables,
# figure and JSON in assets/. A finished run is skipped, so an interrupted ladder resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
[ -f runs/cold-1/summary.json ] || python mmr1.py --rl-steps 0 --seed 1 --out runs/cold-1
L="python assets/ladder.py --init-from runs/cold-1/sft --workdir runs/ladder"
$L --out runs/ladder/lane-a --rows uniform vas-paper vas dr-grpo epochs-4 &
$L --out runs/ladder/lane-b --rows no-kl seq-mean dynamic-sampling dead-0.9 dead-0.9-vas
wait
$L
