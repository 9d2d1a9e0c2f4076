#!/usr/bin/env bash
# The Dask suite (marker dask, tests/dask/): a real distributed.LocalCluster with worker
# processes crawls the local server over loopback (5,000 URLs, a worker SIGKILLed
# mid-crawl, a refused partition, the CLI's --dask, examples/dask_crawl.py).
# Installs what it needs itself: the [dask] extra, and pandas + pyarrow for the Parquet
# one-liner the example runs (test-only: the extra itself does not need them).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[server,cli,dev,dask]' pandas pyarrow
status=0
.venv/bin/python -m pytest -m dask -p no:cacheprovider -q || status=$?
if [ "$status" -eq 5 ]; then
  echo "50-dask: no test collected (is the dask extra installed?)" >&2
  exit 1
fi
exit "$status"
