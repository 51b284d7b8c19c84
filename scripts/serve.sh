#!/usr/bin/env bash
# Runs the upload page and API (`make serve` builds what it needs first):
# `wasmtime serve` with the composed component, uploading to `bigin-local`
# on a free loopback port, or to a real Bigin account when
# BIGIN_DATA_CENTRE or BIGIN_API_DOMAIN is set (then with the account's
# BIGIN_ACCESS_TOKEN, or BIGIN_REFRESH_TOKEN with BIGIN_CLIENT_ID and
# BIGIN_CLIENT_SECRET). Every BIGIN_* setting the upload component reads is
# passed on. Listens on 127.0.0.1:${PORT:-8080}; Ctrl-C stops everything.
#
# Builds and installs nothing. Overrides: BIGIN_SERVE_COMPONENT (the
# composed .wasm), BIGIN_LOCAL (the bigin-local binary), WASMTIME.
set -euo pipefail
cd "$(dirname "$0")/.."

component=${BIGIN_SERVE_COMPONENT:-target/serve/bigin_serve.wasm}
local_bin=${BIGIN_LOCAL:-target/release/bigin-local}
wasmtime=${WASMTIME:-wasmtime}
port=${PORT:-8080}

fail() {
    echo "serve.sh: $*" >&2
    exit 1
}

[[ -f $component ]] || fail "$component is missing; run \`make serve\` (or \`make serve-component\`)"
command -v "$wasmtime" >/dev/null || fail "wasmtime is not on PATH; run \`make wasmtime\`"

local_pid=
serve_pid=
log_dir=$(mktemp -d)
stop() {
    # Only the two children this script started, by their ids.
    [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null || true
    [[ -n $local_pid ]] && kill "$local_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$log_dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

if [[ -n ${BIGIN_DATA_CENTRE:-} || -n ${BIGIN_API_DOMAIN:-} ]]; then
    [[ -n ${BIGIN_ACCESS_TOKEN:-}${BIGIN_REFRESH_TOKEN:-} ]] ||
        fail "a real account needs BIGIN_ACCESS_TOKEN (or BIGIN_REFRESH_TOKEN)"
    target="Bigin (${BIGIN_API_DOMAIN:-data centre ${BIGIN_DATA_CENTRE}})"
else
    [[ -x $local_bin ]] || fail "$local_bin is missing; run \`make native\`"
    "$local_bin" --port 0 >"$log_dir/local.out" 2>"$log_dir/local.err" &
    local_pid=$!
    local_url=
    for _ in $(seq 100); do
        local_url=$(sed -n 's/^bigin-local listening on //p' "$log_dir/local.out")
        [[ -n $local_url ]] && break
        kill -0 "$local_pid" 2>/dev/null || fail "bigin-local exited: $(cat "$log_dir/local.err")"
        sleep 0.1
    done
    [[ -n $local_url ]] || fail "bigin-local did not start within 10 s"
    export BIGIN_API_DOMAIN=$local_url
    export BIGIN_ACCESS_TOKEN=local-dev-token
    # A real account's credentials have no business with the local server.
    unset BIGIN_REFRESH_TOKEN BIGIN_CLIENT_ID BIGIN_CLIENT_SECRET BIGIN_ACCOUNTS_URL
    target="bigin-local at $local_url (see $local_url/_local/stats)"
fi

# `--env NAME` without a value hands the guest this process's value, so no
# token or secret appears on a command line that `ps` shows. This script's
# own settings stay out.
env_args=()
while IFS= read -r name; do
    case $name in
        BIGIN_SERVE_COMPONENT | BIGIN_LOCAL) ;;
        BIGIN_*) env_args+=(--env "$name") ;;
    esac
done < <(compgen -e)

"$wasmtime" serve -Scli --addr "127.0.0.1:$port" "${env_args[@]}" "$component" \
    2> >(tee "$log_dir/serve.err" >&2) &
serve_pid=$!
for _ in $(seq 600); do
    grep -q '^Serving HTTP on ' "$log_dir/serve.err" 2>/dev/null && break
    kill -0 "$serve_pid" 2>/dev/null || fail "wasmtime serve exited"
    sleep 0.1
done
grep -q '^Serving HTTP on ' "$log_dir/serve.err" || fail "wasmtime serve did not start within 60 s"

echo
echo "Upload page:  http://127.0.0.1:$port/"
echo "Uploading to: $target"
echo "Try:          curl -F file=@README.md http://127.0.0.1:$port/upload"
echo "Ctrl-C stops both."
wait "$serve_pid"
