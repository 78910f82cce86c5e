#!/bin/sh
# Releases a reservation of reserve.sh: its agent stops once held/ loses it.
set -u
st=$FAKE_STATE
id=$LNST_RESERVATION_ID
# A reservation its reserve command undid on SIGTERM is already gone.
sleep 0.1
rm -f "$st/held/$id"
echo "$LNST_AGENT" >"$st/released/$id"
