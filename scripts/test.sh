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

echo "==> tests (unit, integration, end-to-end, doc-tests)"
cargo test --workspace --all-features

echo "==> rustdoc (broken intra-doc links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet
