#!/usr/bin/env bash
# "When VAS pays" (README): the cold start, then 69 runs in two lanes of one thread each, then the tables, figure
# and JSON in assets/. A finished run is skipped, so an interrupted comparison resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
[ -f runs/cold-1/summary.json ] || python mmr1.py --rl-steps 0 --seed 1 --out runs/cold-1
C="python assets/compare_vas.py --init-from runs/cold-1/sft --workdir runs/vas_compare --out runs/vas_compare/lanes"
ALL="uniform vas-paper vas-free filter"
( $C --shares 0.9 --seeds 0 1 2 3 4 --arms $ALL vas-paper-0.5 && $C --shares 0.0 --seeds 0 1 2 --arms $ALL ) &
$C --shares 0.25 --seeds 0 1 2 3 4 --arms $ALL && $C --shares 0.75 --seeds 0 1 2 --arms $ALL
wait
python assets/compare_vas.py --gather --init-from runs/cold-1/sft --workdir runs/vas_compare --shares 0.0 0.25 0.75 0.9
