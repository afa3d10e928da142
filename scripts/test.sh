#!/usr/bin/env bash
# The whole test suite, as README.md documents it. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> domain purity: tessera-domain must not depend on serde, JWT or async crates"
forbidden=$(cargo tree -p tessera-domain -e normal --prefix none \
  | grep -Eo '^(serde|serde_json|jsonwebtoken|tokio|async-trait|async-std|futures|sqlx|axum|hyper) ' \
  | sort -u || true)
if [ -n "$forbidden" ]; then
  echo "tessera-domain depends on: $forbidden" >&2
  exit 1
fi

echo "==> edge neutrality: tessera-http must not depend on a framework or on the infrastructure"
forbidden=$(cargo tree -p tessera-http -e normal --prefix none \
  | grep -Eo '^(axum|axum-core|tower|tower-http|actix-web|actix-http|hyper|tessera-infrastructure) ' \
  | sort -u || true)
if [ -n "$forbidden" ]; then
  echo "tessera-http depends on: $forbidden" >&2
  exit 1
fi

echo "==> database for the PostgreSQL tests"
# The PostgreSQL store's tests need a server: the one at 127.0.0.1:5432 (trust
# auth, database `test`) unless DATABASE_URL names another. A throwaway
# database is created for this run and dropped on exit; the tests get it as
# DATABASE_URL, with TESSERA_REQUIRE_DB=1 so that none of them can pass by
# skipping. TESSERA_SKIP_DB=1 runs everything else and says what it skipped.
if [ "${TESSERA_SKIP_DB:-}" = 1 ]; then
  echo "TESSERA_SKIP_DB=1: the PostgreSQL tests will report themselves skipped"
  unset DATABASE_URL
else
  server_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
  if ! command -v psql >/dev/null 2>&1; then
    echo "psql (the PostgreSQL client) is needed to create the test database;" >&2
    echo "install it (Debian: apt-get install postgresql-client), or run with TESSERA_SKIP_DB=1" >&2
    exit 1
  fi
  if ! psql "$server_url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    echo "no PostgreSQL answers at $server_url." >&2
    echo "Start one, for example:" >&2
    echo "  Debian: apt-get install postgresql && pg_ctlcluster \$(ls /etc/postgresql) main start" >&2
    echo "  Docker: docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16" >&2
    echo "or point DATABASE_URL at a server where this user may CREATE DATABASE," >&2
    echo "or run with TESSERA_SKIP_DB=1 to skip the PostgreSQL tests." >&2
    exit 1
  fi
  test_db="tessera_test_$$"
  # Same server and options, another database: swap the URL's last path segment.
  base="${server_url%%\?*}"
  query="${server_url#"$base"}"
  if [[ "$base" =~ ^[a-z]+://[^/]*$ ]]; then prefix="$base"; else prefix="${base%/*}"; fi
  psql "$server_url" -Atqc "CREATE DATABASE $test_db" >/dev/null
  trap 'psql "$server_url" -Atqc "DROP DATABASE IF EXISTS $test_db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
  export DATABASE_URL="$prefix/$test_db$query"
  export TESSERA_REQUIRE_DB=1
  echo "using throwaway database $test_db (dropped on exit)"
fi

echo "==> Redis for the Redis tests"
# The Redis store's tests need a server: the one at 127.0.0.1:6379 unless
# REDIS_URL names another. They get TESSERA_REQUIRE_REDIS=1, so that none of
# them can pass by skipping; each works under a key prefix of its own and
# deletes it. TESSERA_SKIP_REDIS=1 runs everything else and says what it skipped.
if [ "${TESSERA_SKIP_REDIS:-}" = 1 ]; then
  echo "TESSERA_SKIP_REDIS=1: the Redis tests will report themselves skipped"
else
  export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
  hostport="${REDIS_URL#*://}"; hostport="${hostport##*@}"; hostport="${hostport%%/*}"
  redis_host="${hostport%:*}"; redis_port="${hostport##*:}"
  [ "$redis_port" = "$hostport" ] && redis_port=6379
  # PONG, or NOAUTH from a server with a password: either way, it answers.
  if ! reply=$( (exec 3<>"/dev/tcp/$redis_host/$redis_port" && printf 'PING\r\n' >&3 \
      && read -r -t 2 line <&3 && echo "$line") 2>/dev/null ) \
      || [[ "$reply" != +PONG* && "$reply" != -NOAUTH* ]]; then
    echo "no Redis answers at $REDIS_URL." >&2
    echo "Start one, for example:" >&2
    echo "  Debian: apt-get install redis-server && service redis-server start" >&2
    echo "  Docker: docker run -d -p 6379:6379 redis:7" >&2
    echo "or point REDIS_URL at one, or run with TESSERA_SKIP_REDIS=1 to skip the Redis tests." >&2
    exit 1
  fi
  export TESSERA_REQUIRE_REDIS=1
  echo "using Redis at $REDIS_URL"
fi

echo "==> headless Chromium for the browser tests"
# tests/e2e/browser.rs drives the demo in Debian's chromium through Debian's
# chromedriver. Installed here when missing (as root, from Debian's
# packages); TESSERA_REQUIRE_BROWSER=1 makes those tests fail rather than
# skip without them. TESSERA_SKIP_BROWSER=1 skips them, saying so.
if [ "${TESSERA_SKIP_BROWSER:-}" = 1 ]; then
  echo "TESSERA_SKIP_BROWSER=1: the browser tests will report themselves skipped"
else
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "chromium or chromedriver is missing: installing Debian's chromium and chromium-driver"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
    fi
  fi
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "the browser tests need /usr/bin/chromium and /usr/bin/chromedriver:" >&2
    echo "  Debian: apt-get install chromium chromium-driver (as root)" >&2
    echo "or run with TESSERA_SKIP_BROWSER=1 to skip them." >&2
    exit 1
  fi
  export TESSERA_REQUIRE_BROWSER=1
  echo "using $(/usr/bin/chromium --version 2>/dev/null | head -1)"
fi

echo "==> PgBouncer for the pooler tests"
# The PostgreSQL store's tests through a pooler start a PgBouncer of their
# own (transaction mode, a free loopback port, in front of the test
# database); they need the program. Installed here when missing and this
# runs as root on Debian or Ubuntu; TESSERA_SKIP_PGBOUNCER=1 runs everything
# else and the pooler tests report themselves skipped.
if [ "${TESSERA_SKIP_PGBOUNCER:-}" = 1 ] || [ "${TESSERA_SKIP_DB:-}" = 1 ]; then
  echo "PgBouncer tests will report themselves skipped"
else
  if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "pgbouncer is not installed: installing it (apt-get install -y pgbouncer)"
      if ! DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer >/dev/null; then
        echo "apt-get could not install pgbouncer." >&2
      fi
    fi
  fi
  if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    echo "the pgbouncer program is missing, and this script could not install it" >&2
    echo "(it installs it only as root where apt-get is available)." >&2
    echo "Install it (Debian/Ubuntu: apt-get install pgbouncer; macOS: brew install pgbouncer)," >&2
    echo "or run with TESSERA_SKIP_PGBOUNCER=1 to skip the PgBouncer tests." >&2
    exit 1
  fi
  export TESSERA_REQUIRE_PGBOUNCER=1
  echo "using $(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
fi

echo "==> nginx for the gateway tests"
# tests/e2e/serve_nginx.rs starts its own nginx (auth_request, Debian package
# `nginx`) in front of `tessera serve`. They get TESSERA_REQUIRE_NGINX=1, so
# that they fail saying what is missing instead of passing by skipping.
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  echo "using $(command -v nginx || echo /usr/sbin/nginx)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "nginx is missing: installing the Debian package (apt-get install -y nginx)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y nginx >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y nginx >/dev/null; }
else
  echo "nginx is missing and cannot be installed here (that needs root and apt-get):" >&2
  echo "  Debian: apt-get install -y nginx; elsewhere, an nginx with ngx_http_auth_request_module" >&2
  echo "the nginx tests will fail saying so" >&2
fi
export TESSERA_REQUIRE_NGINX=1

echo "==> Caddy for the gateway tests"
# tests/e2e/serve_caddy.rs starts its own Caddy (Debian package `caddy`, 2.6
# in bookworm) in front of `tessera serve`, with TESSERA_REQUIRE_CADDY=1 for
# the same reason. The package ships only systemd units: without systemd (a
# container) its postinst starts nothing; with it, it starts a caddy service on
# port 80 as Debian's nginx does, which the tests leave alone (their own ports).
if command -v caddy >/dev/null 2>&1; then
  echo "using $(command -v caddy) ($(caddy version 2>/dev/null | cut -d' ' -f1))"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "caddy is missing: installing the Debian package (apt-get install -y caddy)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y caddy >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y caddy >/dev/null; } \
    || echo "apt-get could not install caddy" >&2
else
  echo "caddy is missing and cannot be installed here (that needs root and apt-get):" >&2
  echo "  Debian: apt-get install -y caddy; elsewhere, Caddy 2.6 or later (https://caddyserver.com)" >&2
  echo "the Caddy tests will fail saying so" >&2
fi
export TESSERA_REQUIRE_CADDY=1

echo "==> tests (unit, integration, end-to-end, doc-tests)"
cargo test --workspace --all-features

echo "==> rustdoc (broken intra-doc links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet
