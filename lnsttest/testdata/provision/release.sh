#!/bin/sh
# Releases a reservation of reserve.sh: its agent stops once held/ loses it.
set -u
st=$FAKE_STATE
id=$LNST_RESERVATION_ID
if [ ! -e "$st/held/$id" ]; then
	echo "fake: reservation $id is not held" >&2
	exit 1
fi
sleep 0.1
rm "$st/held/$id"
echo "$LNST_AGENT" >"$st/released/$id"
