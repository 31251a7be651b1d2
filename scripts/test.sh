#!/usr/bin/env bash
# The test command (README, Testing): installs what is needed, then runs every
# test: ikecore/dataplane/config unit tests and the lab tests against strongSwan
# in network namespaces (root). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
PY=${PYTHON:-python3}
set +e
# Two workers: the machine has 2 cores. Each lab test builds namespaces with its
# own prefix, so tests run side by side; the heavy, timing-sensitive ones (marked
# xdist_group "heavy": floods, fuzzing, zero-loss rekeys) run one after another
# on one worker (--dist loadgroup).
"$PY" -m pytest -n 2 --dist loadgroup -p no:cacheprovider -q -rs "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
    echo "test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$code"
