#!/usr/bin/env bash
# Peak memory of one check of one huge page, cold (first sight) and changed, beside the page's
# size: a well-formed page (rendered from the token stream) and a malformed one (several
# documents run together, so the HTML5 tree is built). Target: peak RSS at most 4 x the body
# plus 30 MB.
#
#   benches/memory.sh            # 10 MB and 50 MB pages
#   SIZES="10 200" benches/memory.sh
#   CONFIRM_REFETCH=false benches/memory.sh   # without the confirming second fetch
#   CHURN=1 benches/memory.sh    # a page that moves on every request: the confirming fetch differs
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$here" && cargo build --release --locked -q)
bin="$here/target/release/forewarn"
work="$(mktemp -d)"
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/site" "$work/watchlists"

# page MB VARIANT MALFORMED: rows of text with classes; a changed variant edits every row's end.
page() {
  python3 - "$1" "$2" "$3" <<'EOF'
import random, sys
mb, variant, malformed = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
words = "alpha beta gamma delta vendor toolbar button inbox release change page api".split()
rnd = random.Random(7)
out, size, doc = [], 0, "<html><body><main>\n"
out.append(doc); size += len(doc)
i = 0
while size < mb * 1024 * 1024:
    row = '<p class="row r%d">%s %d %s</p>\n' % (i % 3, " ".join(rnd.choice(words) for _ in range(12)), i, variant if i % 50 == 0 else "")
    out.append(row); size += len(row); i += 1
    if malformed and i % 100000 == 0:
        out.append("</main></body></html><html><body><main>\n")
out.append("</main></body></html>\n")
sys.stdout.write("".join(out))
EOF
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "${CHURN:-0}" = 1 ]; then
  # Every answer ends with a line of its own, so the confirming fetch differs from the first.
  python3 - "$port" "$work/site/page.html" <<'EOF' &
import http.server, itertools, sys
n = itertools.count()
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = open(sys.argv[2], "rb").read() + b"<p>request %d</p>\n" % next(n)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Page).serve_forever()
EOF
else
  (cd "$work/site" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
fi
server=$!
sleep 1

printf '| page | body MB | cold peak RSS MB | changed peak RSS MB | target MB |\n|---|---:|---:|---:|---:|\n'
for mb in ${SIZES:-10 50}; do
  for malformed in 0 1; do
    cat > "$work/watchlists/w.toml" <<EOF
[[watch]]
name = "big"
url = "http://127.0.0.1:$port/page.html"
confirm_refetch = ${CONFIRM_REFETCH:-true}
max_size = "1GiB"
EOF
    rm -f "$work/db"*
    page "$mb" v1 "$malformed" > "$work/site/page.html"
    body=$(( $(stat -c %s "$work/site/page.html") / 1048576 ))
    cold=$(cd "$work" && /usr/bin/time -f %M "$bin" check --db "$work/db" 2>&1 >/dev/null | tail -1)
    page "$mb" v2 "$malformed" > "$work/site/page.html"
    touch -d '+100 sec' "$work/site/page.html"
    changed=$(cd "$work" && /usr/bin/time -f %M "$bin" check --db "$work/db" 2>&1 >/dev/null | tail -1)
    kind=$([ "$malformed" = 1 ] && echo malformed || echo well-formed)
    printf '| %s | %d | %d | %d | %d |\n' "$kind" "$body" $((cold / 1024)) $((changed / 1024)) $((4 * body + 30))
  done
done
