#!/usr/bin/env bash
# bench/ab.sh — two concurrencydb builds side by side with Redis
# (appendfsync always), for deciding whether a change helps: one
# redis-benchmark load against A, B and Redis in turn, ROUNDS times, each
# round's A/Redis and B/Redis ratios and their medians, and each server's
# CPU time per request (user + system, from /proc: it scatters less than
# throughput when other work shares the cores). On this shared, noisy
# machine only ratios from the same round mean anything; a change is worth
# keeping when its median moves by more than the rounds scatter.
#
#   bench/ab.sh BIN_A BIN_B                         # 7 rounds of SET, 50 clients
#   ROUNDS=5 bench/ab.sh BIN_A BIN_B -t incr -P 16   # any redis-benchmark load
#   PREFILL=6 bench/ab.sh BIN_A BIN_B -t incr      # after 6 × 100,000 other keys
#   PREFILL=1 CHURN=5 bench/ab.sh BIN_A BIN_B       # and 5 × 100,000 before each run
#   FILL=1 bench/ab.sh BIN_A BIN_B -t get -P 16     # the loads' own keys written first
#   git worktree add /tmp/old HEAD~1 && (cd /tmp/old && go build -o /tmp/a ./cmd/concurrencydb)
#
# Each run is -n N (default 100000) requests over 100,000 random keys; the
# servers start fresh, with the repository's config.yml. Unlike run.sh this
# is a quick comparison, not a report: README figures come from run.sh.
# CONFIG_A and CONFIG_B replace config.yml for one build (an older build
# may refuse a newer file). PREFILL=K first writes K other keyspaces of 100,000 keys to all three
# servers, as run.sh's earlier loads do: the working set then outgrows the
# record cache, as it does there.
#
# HTTP=seq|ctr|kv|get runs run.sh's wrk load of that name (POST sequence,
# POST counter ?add=1, POST kv of 100 B, GET kv) against A's and B's HTTP
# listeners for HTTP_SECS (default 5) seconds instead, and compares each to
# Redis's redis-benchmark load as given (default INCR, as run.sh's HTTP
# rows): the CPU figures of A and B are then per HTTP request.
#   HTTP=seq ROUNDS=5 bench/ab.sh BIN_A BIN_B -t incr
set -uo pipefail
{
[ $# -ge 2 ] || { echo "usage: bench/ab.sh BIN_A BIN_B [redis-benchmark args]" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2")
shift 2
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(-t set)
ROUNDS=${ROUNDS:-7}
N=${N:-100000}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The servers run with the repository's config.yml as it is: a token from
# the environment would answer every HTTP load 401.
unset CONCURRENCYDB_TOKEN
[ -z "${HTTP:-}" ] || [ $# -gt 0 ] || ARGS=(-t incr)
for t in redis-server redis-cli redis-benchmark ${HTTP:+wrk}; do
  command -v "$t" >/dev/null || { echo "ab.sh: $t is missing (apt-get install redis-server redis-tools)" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdb-ab.XXXXXX") || exit 1
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$REPO" && go build -o "$TMP/freeport" ./bench/freeport) || exit 1
ports=($("$TMP/freeport" -n 5)) || exit 1
up() { # port
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  echo "ab.sh: nothing answers on port $1" >&2
  exit 1
}
"$A" -config "${CONFIG_A:-$REPO/config.yml}" -data "$TMP/a" -http "127.0.0.1:${ports[3]}" -resp "127.0.0.1:${ports[0]}" >"$TMP/a.log" 2>&1 &
PIDS+=($!)
"$B" -config "${CONFIG_B:-$REPO/config.yml}" -data "$TMP/b" -http "127.0.0.1:${ports[4]}" -resp "127.0.0.1:${ports[1]}" >"$TMP/b.log" 2>&1 &
PIDS+=($!)
mkdir "$TMP/redis"
(cd "$TMP/redis" && exec redis-server --port "${ports[2]}" --bind 127.0.0.1 --appendonly yes \
  --appendfsync always --save '' >"$TMP/redis.log" 2>&1) &
PIDS+=($!)
for p in "${ports[@]:0:3}"; do up "$p"; done

cpu() { # pid: its user + system CPU time so far, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
churn() { # resp-port: CHURN × 100,000 other keys, before a measured run
  for ((k = 1; k <= ${CHURN:-0}; k++)); do
    redis-benchmark -p "$1" -c 50 -P 16 -n 100000 -r 100000 -q SET "churn$k:__rand_int__" 1 >/dev/null 2>&1
  done
}
rps() { # port pid: "requests/s server-CPU-µs-per-request" of one run
  churn "$1"
  local c0 out
  c0=$(cpu "$2")
  out=$(redis-benchmark -p "$1" -c 50 -n "$N" -r 100000 --csv "${ARGS[@]}" 2>/dev/null |
    grep -v '^"test"' | grep '^"' | tail -1 | awk -F, '{ gsub(/"/, "", $2); print $2 }')
  # NB: a failed run (no CSV line) must not shift the CPU figure into
  # the rate: it reads as FAIL.
  echo "${out:-FAIL} $(( ($(cpu "$2") - c0) * TICK_US * 100 / N ))"
}
# wrk scripts as run.sh's: random ids 0..99999, seeded per thread.
lua_head='local n = 0
function setup(t) t:set("tid", n); n = n + 1 end
function init(args) math.randomseed(os.time() * 1000 + tid) end
local function id() return string.format("%08d", math.random(0, 99999)) end
'
case "${HTTP:-}" in
"") ;;
seq) printf '%s%s\n' "$lua_head" 'request = function() return wrk.format("POST", "/db/b/sequence/s" .. id()) end' >"$TMP/http.lua" ;;
ctr) printf '%s%s\n' "$lua_head" 'request = function() return wrk.format("POST", "/db/b/counter/c" .. id() .. "?add=1") end' >"$TMP/http.lua" ;;
kv) printf '%s%s\n' "$lua_head" 'local body = string.rep("v", 100)
request = function() return wrk.format("POST", "/db/b/kv/kv" .. id(), nil, body) end' >"$TMP/http.lua" ;;
get) printf '%s%s\n' "$lua_head" 'request = function() return wrk.format("GET", "/db/b/kv/kv" .. id()) end' >"$TMP/http.lua" ;;
*) echo "ab.sh: HTTP must be seq, ctr, kv or get" >&2; exit 2 ;;
esac
httprps() { # port pid resp-port: "requests/s server-CPU-µs-per-request" of one wrk run
  churn "$3" # NB: the same churn as the Redis run it is compared with
  local c0 out n
  c0=$(cpu "$2")
  out=$(wrk -t2 -c50 -d"${HTTP_SECS:-5}s" -s "$TMP/http.lua" "http://127.0.0.1:$1" 2>&1)
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  local r
  r=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  # NB: wrk counts error responses as requests: a run with any fails.
  grep -qE 'Non-2xx|Socket errors' <<<"$out" && r=FAIL
  echo "${r:-FAIL} $(( ($(cpu "$2") - c0) * TICK_US * 100 / ${n:-1} ))"
}
if [ "${HTTP:-}" = get ]; then # every key GET reads, as run.sh does (a 404 fails the run)
  (cd "$REPO" && go build -o "$TMP/memload" ./bench/memload) || exit 1
  for p in "${ports[3]}" "${ports[4]}"; do
    "$TMP/memload" -http "127.0.0.1:$p" -acc b -keys 100000 -size 100 -prefix kv -conns 32 >/dev/null || exit 1
  done
fi
fill() { # port prefix
  redis-benchmark -p "$1" -c 50 -P 16 -n 300000 -r 100000 -q SET "$2:__rand_int__" 1 >/dev/null 2>&1
}
if [ "${PREFILL:-0}" -gt 0 ] || [ -n "${FILL:-}" ]; then
  # FILL alone: only the keys of the loads themselves, so that a GET reads
  # a value and an INCR finds its counter.
  for p in "${ports[@]:0:3}"; do
    fill "$p" key # the keys of -t set, get, incr…
    fill "$p" counter
    for ((k = 1; k <= ${PREFILL:-0}; k++)); do fill "$p" "fill$k"; done
  done
fi
echo "load: ${HTTP:+wrk HTTP=$HTTP (A, B) against }redis-benchmark -c 50 -n $N -r 100000 ${ARGS[*]} (after ${PREFILL:-0} × 100,000 other keys; ${CHURN:-0} × 100,000 before each run)"
for ((i = 1; i <= ROUNDS; i++)); do
  if [ -n "${HTTP:-}" ]; then
    read -r a ac < <(httprps "${ports[3]}" "${PIDS[0]}" "${ports[0]}")
    read -r b bc < <(httprps "${ports[4]}" "${PIDS[1]}" "${ports[1]}")
  else
    read -r a ac < <(rps "${ports[0]}" "${PIDS[0]}")
    read -r b bc < <(rps "${ports[1]}" "${PIDS[1]}")
  fi
  read -r r rc < <(rps "${ports[2]}" "${PIDS[2]}")
  if ! [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ && $r =~ ^[0-9.]+$ ]] || [ "${r%%.*}" = 0 ]; then
    echo "round $i failed (A: ${a:-none}, B: ${b:-none}, Redis: ${r:-none}): left out of the medians" >&2
    continue
  fi
  awk -v a="$a" -v b="$b" -v r="$r" -v ac="$ac" -v bc="$bc" -v rc="$rc" 'BEGIN { printf "A %.0f  B %.0f  Redis %.0f  A/R %.2f  B/R %.2f  CPU µs/req A %.2f B %.2f Redis %.2f\n", a, b, r, a / r, b / r, ac / 100, bc / 100, rc / 100 }'
done | tee "$TMP/rounds"
[ -s "$TMP/rounds" ] || { echo "ab.sh: every round failed" >&2; exit 1; }
# median of a column; the mean of the two middle values for an even count
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "median of $(wc -l <"$TMP/rounds") rounds: A/R $(awk '{ print $8 }' "$TMP/rounds" | median)  B/R $(awk '{ print $10 }' "$TMP/rounds" | median)  CPU µs/req A $(awk '{ print $14 }' "$TMP/rounds" | median) B $(awk '{ print $16 }' "$TMP/rounds" | median)"
}
