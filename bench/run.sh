#!/usr/bin/env bash
# bench/run.sh — concurrencydb side by side with Redis on this machine.
#
# Starts concurrencydb (fresh data dir), redis-server with
# appendfsync always and redis-server without persistence, all on free
# loopback ports; runs every load against the three interleaved (A B C,
# A B C, …) for ROUNDS rounds; prints a markdown report on stdout (progress
# goes to stderr); stops what it started and removes its temp dirs.
#
#   bench/run.sh                     # 3 rounds, ~8-10 minutes on 2 cores
#   ROUNDS=1 SCALE=0.3 bench/run.sh  # quick look
#   bench/run.sh > results.md        # keep the report
#
# Environment:
#   ROUNDS      rounds of the interleaved loads (default 3)
#   SCALE       multiplies every request count and duration (default 1)
#   CDB_BIN     benchmark this concurrencydb binary instead of building ./cmd/concurrencydb
#   ROTATE=1    rotate the server order each round (A B C, B C A, C A B) instead of A B C
#   TARGET_SECS seconds per redis-benchmark run (default 3, times SCALE)
#   KEEP_TMP=1  keep the temp dir (logs, raw results) instead of removing it
#   SKIP_MEMORY=1, SKIP_QUEUE=1   skip the 1M-key memory test / the 10,000-waiter test
# See bench/README.md for what each row means.

set -uo pipefail
{ # the whole script is one compound command: bash reads it all before running,
  # so editing this file during a run cannot break the run

ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }
scale() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s); if (v < 1) v = 1; print v }'; }

# ---- 1. tools -------------------------------------------------------------
missing=()
for t in redis-server redis-cli redis-benchmark wrk; do
  command -v "$t" >/dev/null || missing+=("$t")
done
if ((${#missing[@]})); then
  say "installing redis-server redis-tools wrk (missing: ${missing[*]})"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update >&2 && $SUDO apt-get install -y redis-server redis-tools wrk >&2 ||
    die "could not install redis-server redis-tools wrk"
fi
command -v curl >/dev/null || { SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo; { $SUDO apt-get update && $SUDO apt-get install -y curl; } >&2 || die "curl is needed"; }
command -v go >/dev/null || die "go is needed to build concurrencydb"
# The servers run with the repository's config.yml as it is: a token from
# the environment would answer every HTTP load 401.
unset CONCURRENCYDB_TOKEN

# ---- temp dir, cleanup ------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdb-bench.XXXXXX") || die "mktemp failed"
PIDS=()
stop_pid() { # pid: TERM, wait up to 10 s, then KILL; it leaves PIDS
  local pid=$1 i p keep=()
  # NB: cleanup must not signal it again minutes later: the number may
  # belong to another process by then.
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "pid $pid did not stop on TERM; killing it"
  kill -KILL "$pid" 2>/dev/null
}
REPORTED=0
cleanup() {
  local pid
  if [ "$REPORTED" = 0 ] && [ -s "${RAW:-/nonexistent}" ] && [ -x "${BIN:-/nonexistent}/report" ]; then
    echo "**Incomplete run** (stopped early; see stderr). What was measured:"
    echo
    "$BIN/report" <"$RAW"
  fi
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  wait 2>/dev/null
  if [ "${KEEP_TMP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- machine --------------------------------------------------------------
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$REPO" status --porcelain 2>/dev/null)" ] && commit="$commit + uncommitted changes"
[ -n "${CDB_BIN:-}" ] && commit="$commit (binary given: $CDB_BIN)"
echo "## concurrencydb vs Redis — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) cores, ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2/1048576 }' /proc/meminfo), Linux $(uname -r)"
echo "- concurrencydb commit $commit, $(go version | awk '{ print $3 }'); $(redis-server --version | awk '{ print $1, $2, $3 }'); $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }')"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
echo "- ROUNDS=$ROUNDS SCALE=$SCALE TARGET_SECS=${TARGET_SECS:-3} ROTATE=${ROTATE:-0}; cells: requests/s (p50 / p99 latency in ms), median of $ROUNDS rounds; ratios: median of the per-round ratios"

# ---- 2. build, start --------------------------------------------------------
BIN=$TMP/bin
mkdir -p "$BIN"
say "building concurrencydb and the bench helpers"
(cd "$REPO" && if [ -n "${CDB_BIN:-}" ]; then cp "$CDB_BIN" "$BIN/concurrencydb"; else go build -o "$BIN/concurrencydb" ./cmd/concurrencydb; fi &&
  for h in freeport mutexbench memload report fsyncprobe; do go build -o "$BIN/$h" "./bench/$h" || exit 1; done) >&2 ||
  die "build failed"
# The config is read again when the memory test starts fresh servers; keep
# the one that matches the binary just built.
cp "$REPO/config.yml" "$TMP/config.yml" || die "no config.yml"
# NB: a local edit to fsync: false would compare a server that does not
# sync with Redis-always: the report says which it measured.
fsync_cfg=$(awk '$1 == "fsync:" { print $2 }' "$TMP/config.yml")
echo "- concurrencydb config: the repository's config.yml, storage.fsync: ${fsync_cfg:-true (default)}$([ "${fsync_cfg:-true}" = true ] || echo ' — NOT DURABLE: not comparable with Redis-always')"

# The disk's own durable-write latency: the floor under every durable figure.
fsync_line() {
  "$BIN/fsyncprobe" -dir "$TMP" -duration 2s 2>&1 | tr ' ' '\n' |
    awk -F= '{ v[$1] = $2 } END { printf "one writer, 128 B append + fdatasync: %s/s, p50 %s / p99 %s / max %s ms", v["per_sec"], v["p50_ms"], v["p99_ms"], v["max_ms"] }'
}
echo "- disk at start ($(df -P "$TMP" | awk 'NR == 2 { print $1 }')): $(fsync_line)"
echo

wait_http() { # url pid
  local i
  for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
wait_resp() { # port pid
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_cdb NAME: sets ${NAME}_PID, ${NAME}_HTTP, ${NAME}_RESP, ${NAME}_RESP_OK, ${NAME}_DIR
start_cdb() {
  local name=$1 ports hp rp dir pid
  ports=($("$BIN/freeport" -n 2)) || die "freeport failed"
  hp=${ports[0]} rp=${ports[1]} dir=$TMP/$name-data
  "$BIN/concurrencydb" -config "$TMP/config.yml" -data "$dir" \
    -http "127.0.0.1:$hp" -resp "127.0.0.1:$rp" >"$TMP/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$hp/healthz" "$pid" || { cat "$TMP/$name.log" >&2; say "concurrencydb did not start"; return 1; }
  local ok=0
  wait_resp "$rp" "$pid" && ok=1
  [ $ok = 1 ] || say "concurrencydb ($name) has no RESP listener yet: RESP loads run against Redis only"
  printf -v "${name}_PID" %s "$pid"
  printf -v "${name}_HTTP" %s "$hp"
  printf -v "${name}_RESP" %s "$rp"
  printf -v "${name}_RESP_OK" %s "$ok"
  printf -v "${name}_DIR" %s "$dir"
}

# start_redis NAME always|memory: sets ${NAME}_PID, ${NAME}_PORT, ${NAME}_DIR
start_redis() {
  local name=$1 port dir pid persist
  port=$("$BIN/freeport") || die "freeport failed"
  dir=$TMP/$name
  mkdir -p "$dir"
  if [ "$2" = always ]; then
    persist=(--appendonly yes --appendfsync always)
  else
    persist=(--appendonly no)
  fi
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' "${persist[@]}" \
    --daemonize no --logfile "$TMP/$name.log" >/dev/null 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_resp "$port" "$pid" || { cat "$TMP/$name.log" >&2; say "redis-server ($name) did not start"; return 1; }
  printf -v "${name}_PID" %s "$pid"
  printf -v "${name}_PORT" %s "$port"
  printf -v "${name}_DIR" %s "$dir"
}

say "starting concurrencydb, redis-server (appendfsync always), redis-server (no persistence)"
start_cdb cdb || die "concurrencydb did not start"
start_redis always always || die "redis-server did not start"
start_redis memory memory || die "redis-server did not start"
say "concurrencydb pid $cdb_PID http :$cdb_HTTP resp :$cdb_RESP; redis always pid $always_PID :$always_PORT; redis memory pid $memory_PID :$memory_PORT"

RAW=$TMP/results.tsv
: >"$RAW"
row() { # kind load server round v1 v2 v3 [ref] [writes per fsync]
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "${8:-}" "${9:-}" >>"$RAW"
}
# commits PORT: "group_commits group_commit_writes" from concurrencydb's INFO
commits() {
  redis-cli -p "$1" INFO persistence 2>/dev/null | tr -d '\r' |
    awk -F: '$1 == "group_commits" { c = $2 } $1 == "group_commit_writes" { w = $2 } END { if (c != "" && w != "") print c, w }'
}
wpf() { # "c0 w0" "c1 w1" -> writes per commit over the interval
  [ -n "$1" ] && [ -n "$2" ] || return 0
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); c = y[1] - x[1]; w = y[2] - x[2]
    if (c > 0) printf "%.1f", w / c }'
}

# ---- sanity: every command the loads use answers without error -------------
check() { # port cmd...
  local out
  out=$(redis-cli -p "$1" "${@:2}" 2>&1)
  case $out in
    ERR* | *rror* | WRONGTYPE* | "") say "warning: '${*:2}' on port $1 answered: $out"; return 1 ;;
  esac
  return 0
}
CDB_CUSTOM=1
if [ "$cdb_RESP_OK" = 1 ]; then
  for c in "SET benchcheck:s x" "GET benchcheck:s" "INCR benchcheck:i" "SEQ.NEXT benchcheck:q" "CTR.ADD benchcheck:c 1"; do
    check "$cdb_RESP" $c || CDB_CUSTOM=0
  done
fi
for p in "$always_PORT" "$memory_PORT"; do
  check "$p" INCRBY benchcheck:c 1 || die "redis-server on $p does not work"
done

# ---- loads ------------------------------------------------------------------
# redis-benchmark runs a number of requests, not a duration, and the three
# servers differ by 10x and more; so a short unrecorded round 0 (which also
# warms the servers up) measures each load on each server, and every later
# run asks for TARGET_SECS worth of requests at the rate of the previous run.
TARGET_SECS=$(awk -v t="${TARGET_SECS:-3}" -v s="$SCALE" 'BEGIN { print t * s }')
N0_50=$(scale 20000) # round 0, 50 clients, no pipelining
N0_P=$(scale 60000)  # round 0, 50 clients, -P 16
N0_1=$(scale 2000)   # round 0, 1 client
WRK_SECS=$(scale 4)
MUTEX_SECS=$(scale 4)
declare -A EST=() # "load|server" -> requests/s of the last run
nfor() {          # load server default_n
  local e=${EST["$1|$2"]:-}
  [ -n "$e" ] || { echo "$3"; return; }
  awk -v r="$e" -v t="$TARGET_SECS" 'BEGIN { n = int(r * t); if (n < 2000) n = 2000; print n }'
}

# Prefill the keys GET reads (redis-benchmark's key:__rand_int__ with -r
# 100000 is key:000000000000 … key:000000099999), so no GET is a miss.
say "prefilling 100,000 keys for GET on each server"
for p in "$always_PORT" "$memory_PORT" $([ "$cdb_RESP_OK" = 1 ] && echo "$cdb_RESP"); do
  # NB: a GET of a missing key is a normal nil reply: without the prefill
  # the GET rows would measure misses, so a failed one stops the run.
  "$BIN/memload" -resp "127.0.0.1:$p" -keys 100000 -size 3 -prefix key: -digits 12 >&2 ||
    die "prefill on port $p failed"
done
"$BIN/memload" -http "127.0.0.1:$cdb_HTTP" -acc b -keys 100000 -size 100 -prefix kv -conns 32 >&2 ||
  die "HTTP kv prefill failed"

# rb LOAD SERVER ROUND PORT N0 redis-benchmark-args...: one redis-benchmark
# run; round 0 only calibrates.
rb() {
  local load=$1 server=$2 round=$3 port=$4 n out line rps p50 p99
  n=$(nfor "$load" "$server" "$5")
  shift 5
  local c0= c1= w=
  [ "$server" = cdb ] && c0=$(commits "$port")
  out=$(redis-benchmark -h 127.0.0.1 -p "$port" --csv -n "$n" "$@" 2>&1)
  [ "$server" = cdb ] && c1=$(commits "$port") && w=$(wpf "$c0" "$c1")
  line=$(printf '%s\n' "$out" | grep -v '^"test"' | grep '^"' | tail -1)
  if [ -z "$line" ]; then
    say "  $load $server: FAILED: $(printf '%s' "$out" | grep -v '^WARNING' | tr '\r\n' '  ' | cut -c1-200)"
    [ "$round" = 0 ] || row rate "$load" "$server" "$round" ERR ERR ERR
    return
  fi
  IFS=, read -r rps p50 p99 < <(printf '%s\n' "$line" | awk -F, '{ gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2 "," $5 "," $7 }')
  say "  $load $server: $rps req/s, p50 $p50 ms, p99 $p99 ms (n=$n${w:+, $w writes/fsync})"
  EST["$load|$server"]=$rps
  [ "$round" = 0 ] || row rate "$load" "$server" "$round" "$rps" "$p50" "$p99" "" "$w"
}

# resp_load LOAD ROUND N0 "redis-benchmark args for all" [cdb command] [redis command]
# The servers run in the order A B C (concurrencydb, Redis always, Redis
# memory); with ROTATE=1, round r starts r-1 places further (B C A, C A B…),
# so no server always runs right after the same other one (whose background
# work — compaction, AOF rewrite — may still be going on).
order() { # round
  local all=(cdb always memory) k=0
  [ "${ROTATE:-0}" = 1 ] && [ "$1" -gt 0 ] && k=$((($1 - 1) % 3))
  echo "${all[@]:k}" "${all[@]:0:k}"
}
resp_load() {
  local load=$1 round=$2 n0=$3 common=$4 cdbcmd=${5:-} rcmd=${6:-} s
  for s in $(order "$round"); do
    case $s in
      cdb)
        if [ "$cdb_RESP_OK" = 1 ] && { [ -z "$cdbcmd" ] || [ "$CDB_CUSTOM" = 1 ]; }; then
          rb "$load" cdb "$round" "$cdb_RESP" "$n0" $common $cdbcmd
        else
          [ "$round" = 0 ] || row rate "$load" cdb "$round" NA NA NA
        fi ;;
      always) rb "$load" always "$round" "$always_PORT" "$n0" $common $rcmd ;;
      memory) rb "$load" memory "$round" "$memory_PORT" "$n0" $common $rcmd ;;
    esac
  done
}

# wrk scripts: random ids 0..99999 (like -r 100000), seeded per thread.
lua_head='local n = 0
function setup(t) t:set("tid", n); n = n + 1 end
function init(args) math.randomseed(os.time() * 1000 + tid) end
local function id() return string.format("%08d", math.random(0, 99999)) end
'
printf '%s%s\n' "$lua_head" 'request = function() return wrk.format("POST", "/db/b/sequence/s" .. id()) end' >"$TMP/seq.lua"
printf '%s%s\n' "$lua_head" 'request = function() return wrk.format("POST", "/db/b/counter/c" .. id() .. "?add=1") end' >"$TMP/ctr.lua"
printf '%s%s\n' "$lua_head" "local body = string.rep(\"v\", 100)
request = function() return wrk.format(\"POST\", \"/db/b/kv/kv\" .. id(), nil, body) end" >"$TMP/kvset.lua"
printf '%s%s\n' "$lua_head" 'request = function() return wrk.format("GET", "/db/b/kv/kv" .. id()) end' >"$TMP/kvget.lua"

to_ms() { # wrk duration (850.00us, 1.23ms, 2.00s) -> ms
  awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}

# http_load LOAD ROUND SCRIPT: wrk against concurrencydb only
http_load() {
  local load=$1 round=$2 script=$3 out rps p50 p99 bad c0= c1= w=
  [ "$cdb_RESP_OK" = 1 ] && c0=$(commits "$cdb_RESP")
  out=$(wrk -t2 -c50 -d"${WRK_SECS}s" --latency -s "$script" "http://127.0.0.1:$cdb_HTTP" 2>&1)
  rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')
  p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
  p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
  bad=$(printf '%s\n' "$out" | grep -E 'Non-2xx|Socket errors' | sed 's/^ *//' | tr '\n' ' ')
  if [ -z "$rps" ] || [ -z "$p50" ]; then
    say "  $load cdb: FAILED: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)"
    row rate "$load" cdb "$round" ERR ERR ERR "INCR 50c"
    return
  fi
  if [ -n "$bad" ]; then
    # NB: wrk's Requests/sec counts error responses too: a run with any is
    # no measurement of the load.
    say "  $load cdb: ERRORS: $bad"
    row note "round $round, $load: wrk reported $bad" cdb "$round" "" "" ""
    row rate "$load" cdb "$round" ERR ERR ERR "INCR 50c"
    return
  fi
  [ "$cdb_RESP_OK" = 1 ] && c1=$(commits "$cdb_RESP") && w=$(wpf "$c0" "$c1")
  p50=$(to_ms "$p50") p99=$(to_ms "$p99")
  say "  $load cdb: $rps req/s, p50 $p50 ms, p99 $p99 ms${w:+, $w writes/fsync}"
  row rate "$load" cdb "$round" "$rps" "$p50" "$p99" "INCR 50c" "$w"
}

mutex_load() { # ROUND
  local round=$1 out mode=http
  [ "$cdb_RESP_OK" = 1 ] && mode=resp
  # NB: the mode is given, not left to -mode auto, whose fallback would
  # file an HTTP round under the RESP label.
  out=$("$BIN/mutexbench" -resp "127.0.0.1:$cdb_RESP" -http "127.0.0.1:$cdb_HTTP" -test contend \
    -mode "$mode" -clients 10 -duration "${MUTEX_SECS}s" 2>"$TMP/mutexbench.err")
  say "  mutex: $out"
  declare -A kv=()
  local f
  for f in $out; do [[ $f == *=* ]] && kv[${f%%=*}]=${f#*=}; done
  local lbl="MLOCK→MUNLOCK, 10 clients, one mutex ($mode; Redis: BLPOP→RPUSH of a token)"
  if [ -z "${kv[rate]:-}" ] || [ "${kv[errors]:-1}" != 0 ]; then
    # NB: a run with errors (a wait that timed out is one) is no
    # measurement: its wait percentiles leave the failed waits out.
    say "  mutex FAILED: ${kv[errors]:-?} errors, first: ${kv[first_error]:-} $(cat "$TMP/mutexbench.err")"
    row note "round $round, mutex contend: ${kv[errors]:-?} errors, first: ${kv[first_error]:-}" cdb "$round" "" "" ""
    row rate "$lbl: cycles/s, handover unlock→grant" cdb "$round" ERR ERR ERR
    row rate "$lbl: cycles/s, wait MLOCK→grant" cdb "$round" ERR ERR ERR
    return
  fi
  row rate "$lbl: cycles/s, handover unlock→grant" cdb "$round" "${kv[rate]}" "${kv[handover_p50_ms]}" "${kv[handover_p99_ms]}"
  row rate "$lbl: cycles/s, wait MLOCK→grant" cdb "$round" "${kv[rate]}" "${kv[wait_p50_ms]}" "${kv[wait_p99_ms]}"
  # The baseline: the same client against Redis-memory's own FIFO mutex (a
  # token list, BLPOP → RPUSH; see bench/mutexbench). Our mutexes are not
  # durable, so Redis-always (an fsync per RPUSH) is not measured.
  out=$("$BIN/mutexbench" -resp "127.0.0.1:$memory_PORT" -test contend -mode redis \
    -clients 10 -duration "${MUTEX_SECS}s" 2>"$TMP/mutexbench.err")
  say "  mutex, Redis memory (BLPOP/RPUSH): $out"
  kv=()
  for f in $out; do [[ $f == *=* ]] && kv[${f%%=*}]=${f#*=}; done
  if [ -z "${kv[rate]:-}" ] || [ "${kv[errors]:-1}" != 0 ]; then
    row note "round $round, mutex contend, Redis memory: ${kv[errors]:-?} errors, first: ${kv[first_error]:-} $(cut -c1-200 "$TMP/mutexbench.err")" cdb "$round" "" "" ""
    return
  fi
  row rate "$lbl: cycles/s, handover unlock→grant" memory "$round" "${kv[rate]}" "${kv[handover_p50_ms]}" "${kv[handover_p99_ms]}"
  row rate "$lbl: cycles/s, wait MLOCK→grant" memory "$round" "${kv[rate]}" "${kv[wait_p50_ms]}" "${kv[wait_p99_ms]}"
}

start_all=$(date +%s)
for ((r = 0; r <= ROUNDS; r++)); do
  if [ $r = 0 ]; then say "round 0: warm-up and calibration, not recorded"; else
    say "round $r of $ROUNDS ($(($(date +%s) - start_all)) s so far)"; fi
  resp_load "SET 50c" $r $N0_50 "-c 50 -r 100000 -t set"
  resp_load "INCR 50c" $r $N0_50 "-c 50 -r 100000 -t incr"
  resp_load "GET 50c" $r $N0_50 "-c 50 -r 100000 -t get"
  resp_load "SET 50c -P 16" $r $N0_P "-c 50 -P 16 -r 100000 -t set"
  resp_load "INCR 50c -P 16" $r $N0_P "-c 50 -P 16 -r 100000 -t incr"
  resp_load "GET 50c -P 16" $r $N0_P "-c 50 -P 16 -r 100000 -t get"
  resp_load "SET 1c" $r $N0_1 "-c 1 -r 100000 -t set"
  resp_load "INCR 1c" $r $N0_1 "-c 1 -r 100000 -t incr"
  resp_load "GET 1c" $r $N0_1 "-c 1 -r 100000 -t get"
  resp_load "INCR one hot key 50c" $r $N0_50 "-c 50 -t incr"
  resp_load "SEQ.NEXT 50c (Redis: INCR)" $r $N0_50 "-c 50 -r 100000" "SEQ.NEXT seq:__rand_int__" "INCR seq:__rand_int__"
  resp_load "CTR.ADD 50c (Redis: INCRBY)" $r $N0_50 "-c 50 -r 100000" "CTR.ADD ctr:__rand_int__ 1" "INCRBY ctr:__rand_int__ 1"
  [ $r = 0 ] && continue
  http_load "HTTP POST sequence" $r "$TMP/seq.lua"
  http_load "HTTP POST counter ?add=1" $r "$TMP/ctr.lua"
  http_load "HTTP POST kv (100 B)" $r "$TMP/kvset.lua"
  http_load "HTTP GET kv" $r "$TMP/kvget.lua"
  mutex_load $r
  kill -0 "$cdb_PID" 2>/dev/null || {
    row note "concurrencydb exited during round $r: $(tail -3 "$TMP/cdb.log" | tr '\n' ' ' | cut -c1-300)" cdb $r "" "" ""
    say "concurrencydb exited during round $r"; tail -20 "$TMP/cdb.log" >&2; break
  }
done

# ---- 10,000 waiters on one mutex (once) -------------------------------------
if [ "${SKIP_QUEUE:-0}" != 1 ]; then
  say "10,000 clients waiting on one mutex"
  out=$("$BIN/mutexbench" -resp "127.0.0.1:$cdb_RESP" -http "127.0.0.1:$cdb_HTTP" -test queue -waiters 10000 2>"$TMP/queue.err")
  say "  $out"
  declare -A q=()
  for f in $out; do [[ $f == *=* ]] && q[${f%%=*}]=${f#*=}; done
  if [ -n "${q[served]:-}" ]; then
    row note "mutex queue (${q[mode]}): ${q[waiters]} clients waiting on one mutex: ${q[served]} served, ${q[errors]} errors, ${q[out_of_order]} granted out of the order in which they were ${q[order]}, ${q[early_grants]} granted while the holder still held it; all handed over in ${q[drain_secs]} s (${q[rate]%.*}/s; each handover, MUNLOCK sent → next grant: p50 ${q[handover_p50_ms]} / p99 ${q[handover_p99_ms]} ms)${q[first_error]:+; first error: ${q[first_error]}}" cdb 1 "" "" ""
  else
    row note "mutex queue: FAILED: $(tr '\n' ' ' <"$TMP/queue.err" | cut -c1-300)" cdb 1 "" "" ""
  fi
fi

# ---- memory: fresh servers, the same 1,000,000 keys of 100 bytes -----------
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
disk_mb() { du -sk "$1" | awk '{ printf "%.1f", $1 / 1024 }'; }
if [ "${SKIP_MEMORY:-0}" != 1 ]; then
  say "memory: stopping the round servers, starting fresh ones, loading 1,000,000 keys into each"
  for pid in "$cdb_PID" "$always_PID" "$memory_PID"; do stop_pid "$pid"; done
  MEMKEYS=1000000
  started=()
  start_cdb mcdb && started+=(cdb)
  start_redis malways always && started+=(always)
  start_redis mmemory memory && started+=(memory)
  for s in cdb always memory; do
    [[ " ${started[*]} " == *" $s "* ]] || { row note "memory: the fresh $s server did not start" "$s" 1 "" "" ""; continue; }
    case $s in
      cdb) pid=$mcdb_PID dir=$mcdb_DIR
        if [ "$mcdb_RESP_OK" = 1 ]; then target=(-resp "127.0.0.1:$mcdb_RESP"); else target=(-http "127.0.0.1:$mcdb_HTTP" -conns 32); fi ;;
      always) pid=$malways_PID dir=$malways_DIR target=(-resp "127.0.0.1:$malways_PORT") ;;
      memory) pid=$mmemory_PID dir=$mmemory_DIR target=(-resp "127.0.0.1:$mmemory_PORT") ;;
    esac
    before=$(rss_mb "$pid")
    out=$("$BIN/memload" "${target[@]}" -keys $MEMKEYS -size 100 2>&1)
    say "  $s: $out"
    secs=$(printf '%s\n' "$out" | tr ' ' '\n' | awk -F= '$1 == "secs" { print $2 }')
    sleep 3
    rss=$(rss_mb "$pid" 2>/dev/null) disk=$(disk_mb "$dir")
    say "  $s: VmRSS $before MB before, ${rss:-?} MB after; data dir $disk MB"
    if [ -z "$rss" ]; then # the server is gone: no figure
      row note "memory: $s exited before its resident memory was read" "$s" 1 "" "" ""
      continue
    fi
    if printf '%s' "$out" | grep -q 'errors=0 sample_bad=0'; then
      row mem memory "$s" 1 "$rss" "$disk" "${secs:-0}"
    else
      row note "memory load on $s failed: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)" "$s" 1 "" "" ""
    fi
  done
fi

# ---- server health after the run --------------------------------------------
for name in cdb mcdb; do
  log=$TMP/$name.log
  [ -f "$log" ] || continue
  n=$(grep -iE 'level=(ERROR|WARN)|panic|fatal' "$log" | grep -vc 'slow operation')
  [ "$n" = 0 ] || row note "concurrencydb ($name) logged $n warning/error lines, first: $(grep -iE 'level=(ERROR|WARN)|panic|fatal' "$log" | grep -v 'slow operation' | head -1 | cut -c1-200)" cdb 1 "" "" ""
  slow=$(grep -c 'msg="slow operation"' "$log")
  [ "$slow" = 0 ] || row note "concurrencydb ($name) logged $slow slow operations (log.slow_ms in config.yml), the slowest $(grep 'msg="slow operation"' "$log" | grep -oE 'duration_ms=[0-9.]+' | sort -t= -k2 -g | tail -1 | cut -d= -f2) ms; in $(grep 'msg="slow operation"' "$log" | sed -E 's/^time=([^ ]*:[0-9][0-9])\..*/\1/' | sort -u | wc -l) distinct seconds" cdb 1 "" "" ""
done

row note "disk at the end: $(fsync_line)" cdb 1 "" "" ""
row note "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); the run took $(($(date +%s) - start_all)) s" cdb 1 "" "" ""
say "done in $(($(date +%s) - start_all)) s"
"$BIN/report" <"$RAW"
REPORTED=1
exit
}
