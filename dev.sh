#!/usr/bin/env bash
# The project's two commands; everything else they need is set up on the way.
#   ./dev.sh serve   build the bundled connectors and run the host on 127.0.0.1:8080
#                    (connectors in ./target/connectors, embedded store under ./data;
#                    the outbound guard allows 127.0.0.0/8, for callbacks on this machine)
#   ./dev.sh test    fmt and clippy checks, then the whole test suite (what CI runs);
#                    its PostgreSQL tests start a private cluster (tests/pg.rs), installing
#                    Debian's server package first if it is missing, unless TEST_DATABASE_URL
#                    names a server to use instead; componentize-py, which builds the Python
#                    connectors, and schemathesis, which tests the OpenAPI document, are
#                    installed from PyPI under target/tools first; the console's browser
#                    test needs Debian's chromium and chromium-driver, installed when missing
set -euo pipefail
cd "$(dirname "$0")"

ensure_targets() {
  local t libdir
  for t in wasm32-unknown-unknown wasm32-wasip2; do
    libdir=$(rustc --print target-libdir --target "$t" 2>/dev/null || true)
    if [ -z "$libdir" ] || [ ! -d "$libdir" ]; then
      rustup target add "$t"
    fi
  done
}

# The server programs tests/pg.rs runs (initdb, pg_ctl, postgres), looked for where it looks:
# PATH, then /usr/lib/postgresql/*/bin. Installed from Debian's packages when missing.
ensure_postgres() {
  [ -n "${TEST_DATABASE_URL:-}" ] && return
  local dirs dir p found
  IFS=: read -ra dirs <<<"$PATH"
  for dir in "${dirs[@]}" /usr/lib/postgresql/*/bin; do
    found=1
    for p in initdb pg_ctl postgres; do
      [ -x "$dir/$p" ] || found=
    done
    [ -n "$found" ] && return
  done
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    else
      echo "dev.sh test: the PostgreSQL tests need a server: found no initdb, pg_ctl and" \
        "postgres on PATH nor in /usr/lib/postgresql/*/bin, and without root or sudo" \
        "cannot apt-get install postgresql; install it, or set TEST_DATABASE_URL" >&2
      exit 1
    fi
  fi
  echo "dev.sh test: installing PostgreSQL's server (Debian's postgresql package)" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

# Headless Chromium and its WebDriver, which the console's browser test (tests/it/console.rs)
# drives: Debian's chromium and chromium-driver, installed when either program is missing.
ensure_chromium() {
  if [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null; then
    return
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    else
      echo "dev.sh test: the console's browser test needs /usr/bin/chromium and chromedriver," \
        "and without root or sudo cannot apt-get install chromium chromium-driver" >&2
      exit 1
    fi
  fi
  echo "dev.sh test: installing Chromium and its WebDriver (Debian's chromium, chromium-driver)" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
}

# The JavaScript connector toolchain (componentize-js, pinned by guest-sdk/js/tools/
# package-lock.json) under target/tools/js, where tests/it/js_connector.rs looks for it.
# Installed with npm when missing or when the lock file changed; never twice.
ensure_js_tools() {
  local dir=target/tools/js lock=guest-sdk/js/tools/package-lock.json
  if cmp -s "$lock" "$dir/installed.lock"; then
    return
  fi
  if ! command -v npm >/dev/null; then
    echo "dev.sh test: the JavaScript connector tests need Node.js 20 and npm" >&2
    exit 1
  fi
  echo "dev.sh test: installing componentize-js under $dir (npm ci)" >&2
  mkdir -p "$dir"
  cp guest-sdk/js/tools/package.json "$lock" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$lock" "$dir/installed.lock"
}

# componentize-py, which builds the Python example and the Python template (tests/python.rs),
# at the pinned version from PyPI, in a virtual environment under target/ (exported as
# COMPONENTIZE_PY for the tests).
COMPONENTIZE_PY_VERSION=0.25.1
ensure_componentize_py() {
  local venv=target/tools/componentize-py
  local bin="$venv/bin/componentize-py"
  if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
    echo "dev.sh: installing componentize-py $COMPONENTIZE_PY_VERSION from PyPI into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "componentize-py==$COMPONENTIZE_PY_VERSION"
  fi
  export COMPONENTIZE_PY="$PWD/$bin"
}

# schemathesis, which tests/it/openapi.rs runs against the host's OpenAPI document, at the
# pinned version from PyPI, in a virtual environment under target/ (exported as SCHEMATHESIS).
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv=target/tools/schemathesis
  local bin="$venv/bin/schemathesis"
  if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
    echo "dev.sh: installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export SCHEMATHESIS="$PWD/$bin"
}

build_connectors() {
  ensure_targets
  # Built without WASI: the host makes each a component that imports only `logging`.
  cargo build --target wasm32-unknown-unknown --profile wasm -p ecwid -p pardot -p infusionsoftrest
  mkdir -p target/connectors
  for c in ecwid pardot infusionsoftrest; do
    cp "target/wasm32-unknown-unknown/wasm/$c.wasm" "target/connectors/$c.wasm.tmp"
    mv "target/connectors/$c.wasm.tmp" "target/connectors/$c.wasm"
  done
}

case "${1:-}" in
  serve)
    shift
    build_connectors
    echo "dev.sh serve: the outbound guard allows 127.0.0.0/8 (--allow-network), so callbacks" \
      "and vendors on this machine are reached; a production host leaves it out" >&2
    exec cargo run --release -p host --bin connector-host -- serve \
      --listen 127.0.0.1:8080 --connectors target/connectors --data data \
      --allow-network 127.0.0.0/8 "$@"
    ;;
  test)
    shift
    ensure_targets
    ensure_postgres
    ensure_chromium
    ensure_js_tools
    ensure_componentize_py
    ensure_schemathesis
    # A one-shot run gains nothing from the incremental cache, which is gigabytes on disk.
    export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
    cargo fmt --all --check
    # Clippy's lints, as `cargo clippy --workspace --all-targets -- -D warnings` runs them,
    # but inside the test build: clippy-driver wraps rustc for the workspace's own crates,
    # so the dependencies are compiled once instead of checked once and built again
    # (minutes on a fresh clone). A lint fails the build.
    export RUSTC_WORKSPACE_WRAPPER
    RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
    export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
    cargo test --workspace --all-targets --no-run
    exec cargo test --workspace "$@"
    ;;
  *)
    echo "usage: $0 serve|test" >&2
    exit 2
    ;;
esac
