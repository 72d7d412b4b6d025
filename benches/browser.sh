#!/usr/bin/env bash
# Browser watches benchmark: 50 browser watches of a local single-page app (each app's toolbar
# is built by its script from a JSON request), Debian's Chromium, served by Python's
# http.server on 127.0.0.1. Three passes: cold (first sight), warm (nothing changed) and
# changed (the shells of 10 apps changed, and the data of 5 others). Prints wall time, pages a
# second and forewarn's peak RSS for each, and what each pass reported.
#
#   benches/browser.sh                        # default settings
#   EXTRA='skip_unchanged_shell = true' benches/browser.sh   # (then the five data-only
#                                         # changes go unseen: the trade that key makes)
#   N=100 TABS=4 benches/browser.sh
#
# FOREWARN_BIN picks the binary (default: a release build of this folder).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
n="${N:-50}"
tabs="${TABS:-2}"
if [ -z "${FOREWARN_BIN:-}" ]; then
  (cd "$here" && cargo build --release --locked --quiet)
  FOREWARN_BIN="$here/target/release/forewarn"
fi
work="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

app() { # app DIR LABEL EXTRA_BUTTON
  mkdir -p "$1"
  cat > "$1/index.html" <<HTML
<!doctype html><html><head><title>app</title></head><body><div id="app"></div><script>
fetch('config.json').then(r => r.json()).then(c => {
  const t = document.createElement('div'); t.id = 'toolbar';
  for (const b of c.buttons.concat($3)) {
    const e = document.createElement('button'); e.className = b.cls; e.textContent = b.label;
    t.appendChild(e);
  }
  document.getElementById('app').appendChild(t);
});
</script></body></html>
HTML
  printf '{"buttons": [{"cls": "send", "label": "%s"}, {"cls": "archive", "label": "Archive"}]}\n' "$2" > "$1/config.json"
}

mkdir -p "$work/www" "$work/state"
for i in $(seq 1 "$n"); do
  app "$work/www/app/$i" "Send $i" "[]"
done
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/app/1/index.html" 2>/dev/null && break
  sleep 0.1
done

{
  for i in $(seq 1 "$n"); do
    printf '[[watch]]\nname = "app%03d"\nurl = "http://127.0.0.1:%s/app/%s/index.html"\n' "$i" "$port" "$i"
    printf 'browser = true\nwait_for = "#toolbar"\nselect = "#toolbar"\n%s\n\n' "${EXTRA:-}"
  done
} > "$work/watchlist.toml"

pass() { # pass NAME
  local start end
  head -1 /proc/stat > "$work/stat0"
  start=$(date +%s.%N)
  /usr/bin/time -f "%U %S %M" -o "$work/rss" "$FOREWARN_BIN" --db "$work/state/forewarn.db" check \
    --watchlist "$work/watchlist.toml" --browser-tabs "$tabs" --format json > "$work/out" 2> "$work/err" || true
  end=$(date +%s.%N)
  head -1 /proc/stat > "$work/stat1"
  python3 - "$1" "$start" "$end" "$n" "$work/rss" "$work/out" "$work/stat0" "$work/stat1" <<'PY'
import collections, json, os, sys
name, start, end, n, rss, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
busy = [sum(int(x) for x in open(f).read().split()[1:4]) for f in sys.argv[7:9]]
machine_cpu = (busy[1] - busy[0]) / os.sysconf("SC_CLK_TCK")
wall = end - start
kinds = collections.Counter()
for line in open(out):
    if line.startswith("{"):
        e = json.loads(line)
        if e.get("event") != "summary":
            kinds[e.get("event")] += 1
user, sys_, peak = open(rss).read().split()[-3:]
cpu = float(user) + float(sys_)
print(f"{name:8s} {wall:6.2f} s  {n / wall:6.1f} pages/s  CPU: forewarn {cpu:4.2f} s, machine {machine_cpu:5.2f} s  {dict(kinds)}")
PY
}

echo "forewarn: $("$FOREWARN_BIN" --version)  watches: $n  tabs: $tabs  extra: ${EXTRA:-none}"
pass cold
pass warm
# Ten shells change (a button more), five apps' data change (a label); fewer with N < 15.
for i in $(seq 1 "$(( n < 10 ? n : 10 ))"); do
  app "$work/www/app/$i" "Send $i" '[{"cls": "snooze", "label": "Snooze"}]'
done
for i in $(seq 11 "$(( n < 15 ? n : 15 ))"); do
  printf '{"buttons": [{"cls": "send", "label": "Send now %s"}, {"cls": "archive", "label": "Archive"}]}\n' "$i" > "$work/www/app/$i/config.json"
done
sleep 1.1 # http.server's Last-Modified has one-second resolution
pass changed
if pgrep -f "forewarn-browser-profile|$work/state" >/dev/null 2>&1; then
  echo "left running after forewarn exited:"; pgrep -af "$work/state" || true
fi
