#!/usr/bin/env bash
# Mutation testing of losslab's certificates and bounds (docs/mutation.md). Not part of CI.
#
#   pip install -e ".[test,mutation]"
#   bash tools/mutation.sh            # the soundness-critical functions (docs/mutation.md lists them)
#   bash tools/mutation.sh all        # every mutant of the modules in [tool.mutmut] (20–25 minutes on 2 cores)
#   bash tools/mutation.sh 'losslab.curvature.classify.*'   # any mutmut name pattern
#
# mutmut (config: [tool.mutmut] in pyproject.toml) copies src/ and the test files it names into
# ./mutants, records which tests reach each function, then runs only those tests against each mutant.
# Afterwards: `mutmut results` lists survivors (and, after a targeted run, every other mutant as "not checked"),
# `mutmut show NAME` prints one as a diff.
set -euo pipefail
cd "$(dirname "$0")/.."
CORE=(
    'losslab.convexity.witness.x_chord_gap*'
    'losslab.convexity.witness.xǁChordWitnessǁverify*'
    'losslab.convexity.witness.x__refused*'
    'losslab.curvature.ritz.x__gap_bounds*'
    'losslab.curvature.ritz.x__result*'
    'losslab.curvature.ritz.x__converged*'
    'losslab.curvature.ritz.x__residual_cap*'
    'losslab.curvature.classify.x__decide*'
    'losslab.landscape.discrete.x__divided*'
    'losslab.landscape.discrete.x__confirm*'
    'losslab.fit.least_squares.x_least_squares_result*'
)
case "${1:-core}" in
    core) targets=("${CORE[@]}") ;;
    all) targets=() ;;
    *) targets=("$@") ;;
esac
# the source under test is the copy in ./mutants, so no PYTHONPATH to another checkout; one thread per test process
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
unset PYTHONPATH
# a fresh start: mutmut keeps earlier results when only tests or configs changed, which would hide a newly killed mutant
rm -rf mutants
nice -n 15 mutmut run --max-children "${MUTATION_JOBS:-2}" "${targets[@]}"
mutmut results | grep -v ': not checked$' || true  # a targeted run leaves every other mutant unchecked
