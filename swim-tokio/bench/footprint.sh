#!/bin/bash
# The agent's footprint: N agents (default 20) on loopback with
# `--profile lan`, all joined through the first; after SETTLE seconds,
# each agent's RSS and PSS (its share of pages mapped by several
# processes), threads, and the CPU they used over WINDOW seconds.
#
#   cargo build --release -p swim-tokio && swim-tokio/bench/footprint.sh
#
# SWIM=PATH measures another binary, e.g. the small static build:
#   cargo build --profile small -p swim-tokio --target x86_64-unknown-linux-musl
#   SWIM=target/x86_64-unknown-linux-musl/small/swim swim-tokio/bench/footprint.sh
#
# Ports 27000.. on 127.0.0.1 must be free. Every agent is stopped at the end.
set -eu
SWIM=${SWIM:-target/release/swim}
N=${N:-20}
SETTLE=${SETTLE:-20}
WINDOW=${WINDOW:-60}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT
for i in $(seq 0 $((N - 1))); do
  port=$((27000 + i * 10))
  join=()
  [ "$i" -gt 0 ] && join=(--join 127.0.0.1:27000)
  "$SWIM" agent --bind 127.0.0.1:$port --http 127.0.0.1:$((port + 1)) --name "n$i" --profile lan "${join[@]}" 2>/dev/null &
  pids+=($!)
done
sleep "$SETTLE"
echo "alive at n0: $("$SWIM" members --http 127.0.0.1:27001 --status alive | tail -n +2 | wc -l) of $N"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
start=()
for p in "${pids[@]}"; do start+=("$(ticks "$p")"); done
sleep "$WINDOW"
rss=0; pss=0; max=0; used=0; i=0
for p in "${pids[@]}"; do
  used=$((used + $(ticks "$p") - start[i])); i=$((i + 1))
  r=$(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup"); s=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup")
  rss=$((rss + r)); pss=$((pss + s)); [ "$r" -gt "$max" ] && max=$r
  threads=$(awk '/^Threads:/{print $2}' "/proc/$p/status")
done
hz=$(getconf CLK_TCK)
echo "agents=$N rss_mean_kib=$((rss / N)) rss_max_kib=$max pss_mean_kib=$((pss / N)) threads=$threads"
awk -v u="$used" -v hz="$hz" -v n="$N" -v w="$WINDOW" 'BEGIN { printf "cpu per agent: %.4f%% of a core\n", 100 * u / hz / n / w }'
