#!/usr/bin/env bash
# The audit page in a real browser: plans a simulated fleet (8 servers with 40 days of backups:
# a locked, a stale and a terminated one among them, databases with a pre-upgrade backup) from a
# saved listing, renders `pruner plan --format html` in headless Chromium, saves a screenshot and
# checks that it shows the page drawn: text, and timeline marks in the page's keep and delete
# colours.
#
#   bash .ci/screenshot.sh [OUT_DIR]     # default: a new temporary directory
#   WINDOW=1280,1400 bash .ci/screenshot.sh OUT_DIR   # the size of docs/plan-report-example.png
#
# Leaves plan.html, plan.png and the logs in OUT_DIR. Needs chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-.venv/bin/python}
out=$(realpath "${1:-$(mktemp -d)}")
mkdir -p "$out"
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "no chromium on PATH: apt-get install chromium" >&2
  exit 1
fi

# The end-to-end tests' fleet, saved as a listing at a fixed time: the same page every run.
"$python" - "$out/listing.json" <<'EOF'
import json, sys
from datetime import UTC, datetime
from pruner.sim import generate_fleet

fleet = generate_fleet(now=datetime(2026, 11, 27, 3, 30, tzinfo=UTC), servers=8, days=40, seed=1)
with open(sys.argv[1], "w", encoding="utf-8") as listing:
    json.dump({"servers": fleet.servers, "backups": fleet.backups, "snapshots": fleet.snapshots}, listing)
EOF

# The example's kind of policies, with the caps loosened so that the page has deletions to show.
cat > "$out/config.yaml" <<'EOF'
dry_run: true
safety:
  max_deletions_per_run: null
  max_delete_fraction: 1.0
policies:
  - name: databases
    match: {hostnames: ["db-*"]}
    keep_last: 3
    keep_daily: 7
    keep_weekly: 4
    protect: {names: ["*pre-upgrade*"]}
  - name: web
    match: {hostnames: ["web-*"]}
    keep_daily: 14
    keep_weekly: 8
  - name: snapshots
    resource: snapshots
    keep_last: 2
  - name: everything-else
    keep_daily: 7
    keep_weekly: 4
EOF

"$python" -m pruner --config "$out/config.yaml" plan --listing "$out/listing.json" \
  --now 2026-11-27T03:30:00Z --format html > "$out/plan.html" 2> "$out/plan.log"
echo "plan.html: $(wc -c < "$out/plan.html") bytes"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

# Tall enough for the totals, the servers table and the first timelines. No network, no GPU;
# the virtual time budget lets the page finish painting before the capture.
screenshot() {
  rm -rf "${profile:?}"/*
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --virtual-time-budget=10000 --user-data-dir="$profile" --screenshot="$out/plan.png" \
    --window-size="${WINDOW:-1280,2000}" "file://$out/plan.html" > "$out/chromium.log" 2>&1 || {
    echo "chromium failed; its log:" >&2
    tail -20 "$out/chromium.log" >&2
    exit 1
  }
}

# A busy machine can still capture a page half painted: one more capture before failing.
screenshot
if ! "$python" .ci/check_screenshot.py "$out/plan.png" "$out/plan.html"; then
  echo "capturing again" >&2
  screenshot
  "$python" .ci/check_screenshot.py "$out/plan.png" "$out/plan.html"
fi
echo "screenshot: $out/plan.png"
