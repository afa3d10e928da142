#!/usr/bin/env bash
# Load benchmark of `tessera serve` behind nginx: requests per second through
# nginx whose auth_request asks tessera for the verdict (the documented
# snippet, examples/nginx/tessera.conf; a valid session cookie on every
# request), against the same nginx whose auth_request is answered by a static
# location, in interleaved rounds on one machine. The upstream is the same
# nginx answering 200. nginx and tessera share core 0, wrk runs on core 1.
# A third server's auth_request goes over HTTP to a location of the same
# nginx answering 204: the raw cost of asking any service over HTTP, which
# tessera cannot go below; tessera / proxied says what its own work costs.
#
#   scripts/load_serve.sh [SECONDS per run, default 5] [ROUNDS, default 3]
#
# Budget: with tessera >= 0.8 x static. Needs nginx and wrk (Debian packages,
# installed here when missing and run as root) and two cores. Exits 1 when a
# response was not 2xx.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
rounds="${2:-3}"

for tool in nginx wrk; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "$tool is missing: installing Debian's package"
      apt-get install -y "$tool" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
    else
      echo "$tool is missing: install it (Debian: apt-get install $tool)" >&2
      exit 1
    fi
  fi
done
nginx=$(command -v nginx || echo /usr/sbin/nginx)
if [ "$(nproc)" -lt 2 ]; then
  echo "the load benchmark needs two cores (servers on one, wrk on the other)" >&2
  exit 1
fi

cargo build --quiet --release --features server --bin tessera
dir=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

admin_secret="load-only-admin-secret-of-32-bytes-or-more"
: >"$dir/serve.out"
TESSERA_ADMIN_SECRET=$admin_secret TESSERA_LOG=error \
  taskset -c 0 target/release/tessera serve --listen 127.0.0.1:0 >"$dir/serve.out" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$dir/serve.out" && break; sleep 0.05; done
tessera=$(awk '/listening on/ {sub("http://", "", $5); print $5}' "$dir/serve.out")
token=$(curl -fsS -X POST -H "Authorization: Bearer $admin_secret" \
  -d '{"user_id":"0190b5a4-7c2e-7d3a-9f00-00000000a11c","role":"user"}' \
  "http://$tessera/admin/sessions" | sed 's/.*"token":"\([^"]*\)".*/\1/')

base=$((20000 + $$ % 20000))
app_port=$base static_port=$((base + 1)) verdict_port=$((base + 2))
answer_port=$((base + 3)) proxied_port=$((base + 4))
cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream tessera { server $tessera; keepalive 64; }
    upstream app { server 127.0.0.1:$app_port; keepalive 64; }
    upstream answer { server 127.0.0.1:$answer_port; keepalive 64; }
    server { listen 127.0.0.1:$app_port; location / { return 200 "ok\n"; } }
    server { listen 127.0.0.1:$answer_port; location / { return 204; } }
    server {
        listen 127.0.0.1:$proxied_port;
        location = /_answer {
            internal;
            proxy_pass http://answer;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
        location / {
            auth_request /_answer;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }
    server {
        listen 127.0.0.1:$static_port;
        location = /_static { internal; return 204; }
        location / {
            auth_request /_static;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }
    server {
        listen 127.0.0.1:$verdict_port;
        include $PWD/examples/nginx/tessera.conf;
    }
}
CONF
taskset -c 0 "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$verdict_port") 2>/dev/null && break; sleep 0.05; done

for port in "$static_port" "$proxied_port" "$verdict_port"; do
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: __Host-session=$token" "http://127.0.0.1:$port/api/orders")
  if [ "$status" != 200 ]; then
    echo "127.0.0.1:$port answered $status, not 200: $(cat "$dir/error.log")" >&2
    exit 1
  fi
done

results=$(mktemp)
run() { # mode port round
  local mode=$1 port=$2 round=$3 out rps non2xx
  taskset -c 1 wrk -t1 -c32 -d1s -H "Cookie: __Host-session=$token" "http://127.0.0.1:$port/api/orders" >/dev/null
  out=$(taskset -c 1 wrk -t1 -c32 -d"${seconds}s" -H "Cookie: __Host-session=$token" "http://127.0.0.1:$port/api/orders")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses/ {print $5}')
  echo "$mode round $round: $rps req/s, ${non2xx:-0} non-2xx"
  echo "$mode $rps ${non2xx:-0}" >>"$results"
}
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 0 ]; then
    run tessera "$verdict_port" "$round"; run proxied "$proxied_port" "$round"; run static "$static_port" "$round"
  else
    run static "$static_port" "$round"; run proxied "$proxied_port" "$round"; run tessera "$verdict_port" "$round"
  fi
done
echo
awk '
  { rps[$1] = rps[$1] " " $2; bad += $3 }
  END {
    for (m in rps) { n = split(rps[m], v, " "); asort(v); med[m] = v[int((n + 1) / 2)] }
    printf "median req/s: static auth_request %.0f, auth_request over HTTP to a 204 %.0f, tessera verdict %.0f\n", med["static"], med["proxied"], med["tessera"]
    printf "tessera / static: %.2f (budget >= 0.80)\n", med["tessera"] / med["static"]
    printf "proxied / static: %.2f (any service asked over HTTP)\n", med["proxied"] / med["static"]
    printf "tessera / proxied: %.2f (tessera'"'"'s own work)\n", med["tessera"] / med["proxied"]
    printf "non-2xx responses: %d\n", bad
    exit (bad > 0)
  }' "$results"
rm -f "$results"
