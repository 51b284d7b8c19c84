#!/usr/bin/env bash
# The main job, end to end: upload a varied set of real files in one call,
# read every one back by id and compare the bytes, then show that a file one
# byte over the limit is refused before anything is sent.
#
# With neither BIGIN_DATA_CENTRE nor BIGIN_API_DOMAIN set, it starts the
# local Bigin-compatible server on a free loopback port and uses it. With
# either set (and BIGIN_ACCESS_TOKEN), the same steps run against that
# account.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bigin="$root/target/release/bigin"
local_server="$root/target/release/bigin-local"
started=$(date +%s%N)

work=$(mktemp -d "${TMPDIR:-/tmp}/bigin-run.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -z "${BIGIN_DATA_CENTRE:-}" && -z "${BIGIN_API_DOMAIN:-}" ]]; then
    export BIGIN_ACCESS_TOKEN=local-dev-token
    "$local_server" --port 0 --quiet >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    # The server prints its address once it is bound; wait at most 10 s.
    for _ in $(seq 100); do
        grep -q 'listening on' "$work/server.out" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
        sleep 0.1
    done
    BIGIN_API_DOMAIN=$(sed -n 's/^bigin-local listening on //p' "$work/server.out")
    [[ -n "$BIGIN_API_DOMAIN" ]] || { echo "the local server did not start" >&2; exit 1; }
    export BIGIN_API_DOMAIN
    echo "local Bigin-compatible server: $BIGIN_API_DOMAIN"
else
    : "${BIGIN_ACCESS_TOKEN:?set BIGIN_ACCESS_TOKEN to an access token with ZohoBigin.Files.CREATE}"
    echo "uploading to ${BIGIN_API_DOMAIN:-data centre $BIGIN_DATA_CENTRE}"
fi

# --- the files -------------------------------------------------------------
files="$work/files"
mkdir -p "$files" "$work/back"
cp "$root/README.md" "$files/README.md"
# A real PNG: 1x1, one red pixel.
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82' \
    >"$files/pixel.png"
printf 'Für Zoë: "quoted" résumé\n' >"$files/Résumé \"final\" ünïcödé.txt"
: >"$files/empty.txt"
printf 'a file with no extension\n' >"$files/NOTES"
for i in $(seq -w 1 12); do
    printf 'small file %s\n' "$i" >"$files/batch-$i.txt"
done
head -c $((20 * 1024 * 1024)) /dev/urandom >"$files/exactly-20MiB.bin"
head -c $((20 * 1024 * 1024 + 1)) /dev/urandom >"$work/one-byte-over.bin"

upload=(
    "$files/README.md" "$files/pixel.png" "$files/Résumé \"final\" ünïcödé.txt"
    "$files/empty.txt" "$files/NOTES"
)
for i in $(seq -w 1 12); do upload+=("$files/batch-$i.txt"); done
upload+=("$files/exactly-20MiB.bin")

# --- upload, all in one call ----------------------------------------------
echo "uploading ${#upload[@]} files in one call (at most 10 a request)"
"$bigin" upload "${upload[@]}" | tee "$work/refs.jsonl"
count=$(wc -l <"$work/refs.jsonl")
[[ "$count" -eq "${#upload[@]}" ]] || { echo "expected ${#upload[@]} refs, got $count" >&2; exit 1; }

# --- read every file back and compare ------------------------------------
# Ids are opaque but never hold a quote, so sed can take them out of the
# JSON lines without a JSON tool.
mapfile -t ids < <(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$work/refs.jsonl")
"$bigin" download --out "$work/back" "${ids[@]}" >"$work/back.jsonl"
n=0
for path in "${upload[@]}"; do
    cmp -s "$path" "$work/back/$(basename "$path")" || { echo "bytes differ for $path" >&2; exit 1; }
    n=$((n + 1))
done
echo "downloaded $n files by id: every byte matches"

# --- one byte over the limit ----------------------------------------------
uploads_seen() { curl -s "$BIGIN_API_DOMAIN/_local/stats" | sed -n 's/.*"POST \/bigin\/v2\/files":\([0-9]*\).*/\1/p'; }
[[ -n "$server_pid" ]] && before=$(uploads_seen)
if "$bigin" upload "$work/one-byte-over.bin" 2>"$work/over.err"; then
    echo "a file over 20 MiB was accepted" >&2
    exit 1
fi
echo "20 MiB + 1 byte refused: $(cat "$work/over.err")"
if [[ -n "$server_pid" ]]; then
    after=$(uploads_seen)
    [[ -n "$before" && "$before" == "$after" ]] || { echo "the server saw the oversized file" >&2; exit 1; }
    echo "the server saw nothing of it ($after upload requests before and after)"
fi

# --- attach to a record ---------------------------------------------------
# Locally a record is made for the purpose; with a real account name one
# with BIGIN_RECORD_MODULE, BIGIN_RECORD_ID and BIGIN_RECORD_FIELD (a
# file-upload field's API name).
if [[ -n "$server_pid" ]]; then
    module=Contacts field=Documents
    record=$(curl -s -X POST "$BIGIN_API_DOMAIN/_local/records" \
        -d '{"module":"Contacts","fields":{"Last_Name":"Lovelace"}}' | sed -n 's/.*"id":"\([0-9]*\)".*/\1/p')
    [[ -n "$record" ]] || { echo "could not create a local record" >&2; exit 1; }
else
    module=${BIGIN_RECORD_MODULE:-} record=${BIGIN_RECORD_ID:-} field=${BIGIN_RECORD_FIELD:-}
fi
if [[ -n "$record" && -n "$module" && -n "$field" ]]; then
    echo "attaching 3 uploaded files to $module record $record, field $field"
    "$bigin" attach --module "$module" --record "$record" --field "$field" "${ids[@]:0:3}"
    if "$bigin" attach --module "$module" --record "$record" --field "$field" "${ids[0]}" 2>"$work/again.err"; then
        echo "an id was attached twice" >&2
        exit 1
    fi
    echo "attaching the same id again is refused: $(cat "$work/again.err")"
    "$bigin" attach-file --module "$module" --record "$record" "$files/pixel.png"
    # The downloads above read every file back; one more shows a file that
    # is now on a record still reads back whole.
    mkdir -p "$work/after"
    "$bigin" download --out "$work/after" "${ids[1]}"
    cmp -s "$files/pixel.png" "$work/after/pixel.png" || { echo "pixel.png differs" >&2; exit 1; }
else
    echo "set BIGIN_RECORD_MODULE, BIGIN_RECORD_ID and BIGIN_RECORD_FIELD to attach to a record"
fi

elapsed=$((($(date +%s%N) - started) / 1000000))
echo "done in ${elapsed} ms"
