#!/bin/sh
# A fake external machine service for the provisioner tests: it hands out
# "machines" that are lnst-agent processes on unix sockets, after a short
# random wait, and fails at random (seeded). $FAKE_STATE/held has a file per
# reservation held, released/ one per reservation released, agents/ the pid
# of each machine's agent.
#
# FAKE_AGENT  the lnst-agent binary
# FAKE_SEED   seed of the random waits and failures
# FAKE_FAIL   percent of reservations that fail (after printing their id)
# FAKE_HANG   from this attempt on, reservations never finish (0: never)
set -u
st=$FAKE_STATE
mkdir -p "$st/held" "$st/released" "$st/agents" "$st/attempts"
n=1
while ! mkdir "$st/attempts/$n" 2>/dev/null; do n=$((n + 1)); done
rnd() { awk -v s="$FAKE_SEED" -v n="$n" -v k="$1" 'BEGIN { srand(s * 1000 + n * 10 + k); printf "%d\n", rand() * 100 }'; }
id="r$n"
# Until its id is printed, a cancelled reservation undoes itself.
trap 'rm -f "$st/held/$id"; exit 143' TERM INT
touch "$st/held/$id"
echo "id=$id"
trap - TERM INT
sleep "0.$(($(rnd 1) % 4 + 1))"
if [ "$(rnd 2)" -lt "${FAKE_FAIL:-0}" ]; then
	echo "fake: no capacity left (attempt $n)" >&2
	exit 1
fi
if [ "${FAKE_HANG:-0}" -gt 0 ] && [ "$n" -ge "$FAKE_HANG" ]; then
	sleep 300
fi
sock="$st/$id.sock"
# The machine: an agent that lives, in a session of its own, until the
# reservation is released (its held file goes).
setsid sh -c '
	"$1" serve --listen "unix://$2" --journal "" --lease-ttl 3s --log-level warn &
	echo $! >"$3"
	while [ -e "$4" ]; do sleep 0.1; done
	kill -9 $! 2>/dev/null
' agent "$FAKE_AGENT" "$sock" "$st/agents/$id.pid" "$st/held/$id" >"$st/$id.log" 2>&1 </dev/null &
i=0
while [ ! -S "$sock" ]; do
	i=$((i + 1))
	if [ $i -gt 300 ]; then
		echo "fake: the agent of $id did not start: $(cat "$st/$id.log")" >&2
		exit 1
	fi
	sleep 0.05
done
echo "address=unix://$sock"
