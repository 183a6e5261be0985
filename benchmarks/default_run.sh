#!/usr/bin/env bash
# The default job from cold (no meshes, no lattice-field cache), timed (not a test).
#   scripts/fenicsx bash benchmarks/default_run.sh [NP]
set -euo pipefail
np=${1:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
SECONDS=0
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" mpirun -n "$np" python3 -m app.run --out "$work/results" 2>/dev/null | grep -v '^$'

echo "default run, cold, $np rank(s): ${SECONDS} s wall (whole seconds)"
