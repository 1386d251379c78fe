#!/bin/bash
# A paused member: N agents (default 20) on loopback with `--profile lan`,
# all joined through the first; the last one is stopped with SIGSTOP for
# PAUSE seconds of every PAUSE+AWAKE (default 6 of 6.5 s), CYCLES times
# (default 27, about three minutes). Prints how often the others declared it
# failed and suspected it, and how often it, on waking, suspected others.
# A member that is slow but keeps coming back should be suspected, not
# failed (Serf's agents under the same cycle never fail it).
#
#   cargo build --release -p swim-tokio --features agent && swim-tokio/bench/paused.sh
#
# Ports 27500.. (UDP) and 27600.. (HTTP) on 127.0.0.1 must be free. Logs go to
# a temporary directory, removed at the end; every agent is stopped.
set -eu
SWIM=${SWIM:-target/release/swim}
N=${N:-20}
PAUSE=${PAUSE:-6}
AWAKE=${AWAKE:-0.5}
CYCLES=${CYCLES:-27}
dir=$(mktemp -d)
pids=()
trap 'if [ ${#pids[@]} -gt 0 ]; then kill -CONT "${pids[@]}" 2>/dev/null || true; kill "${pids[@]}" 2>/dev/null || true; wait || true; fi; rm -rf "$dir"' EXIT
for i in $(seq 0 $((N - 1))); do
  join=()
  [ "$i" -gt 0 ] && join=(--join 127.0.0.1:27500)
  "$SWIM" agent --profile lan --bind "127.0.0.1:$((27500 + i))" --http "127.0.0.1:$((27600 + i))" \
    --name "n$i" "${join[@]}" 2>"$dir/n$i.log" &
  pids+=($!)
  sleep 0.1
done
sleep 5
last=$((N - 1))
paused=${pids[$last]}
for _ in $(seq 1 "$CYCLES"); do
  kill -STOP "$paused"
  sleep "$PAUSE"
  kill -CONT "$paused"
  sleep "$AWAKE"
done
sleep 3
kill -TERM "${pids[@]}"
wait || true
pids=()
others=$(for i in $(seq 0 $((last - 1))); do echo "$dir/n$i.log"; done)
failed=$(cat $others | grep -c "member failed: n$last" || true)
suspected=$(cat $others | grep -c "member suspected: n$last" || true)
accused=$(grep -c "member suspected" "$dir/n$last.log" || true)
echo "n$last paused ${PAUSE} s of every ${PAUSE}+${AWAKE} s, $CYCLES times, among $N agents:"
echo "  declared failed by the others: $failed times; suspected by them: $suspected times"
echo "  on waking, it suspected others: $accused times"
