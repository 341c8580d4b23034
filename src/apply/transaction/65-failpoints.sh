# ==== part 65-failpoints.sh: TEST HOOK: failpoints ==========================
# !!! A test hook, not a step of the transaction. !!!
# Owns: `failpoint NAME`. Enabled only by a file
# .midfleet/failpoints/NAME (the runner's own 0700 folder: the test lab
# sets it, LabHost::set_failpoint); without it, one `test -f`.
# Must not: change anything; pause past 120 s or an interrupt; be called
# but between steps of 70-actions.sh. The hook ends at the fence below.
# ============================================================================

# --- the transaction ------------------------------------------------------------

# failpoint NAME: a test hook, as etcd's gofail and TiKV's fail-rs have.
# When `.midfleet/failpoints/NAME` exists — .midfleet is the runner's own
# 0700 folder, so only the runner or root can make one — the transaction
# journals `failpoint NAME` and pauses for the seconds the file holds (at
# most 120; an interrupt ends the pause). Without that file: nothing. Points:
# backup (the MID stopped, nothing written), write (the backup made, the
# temp file not yet written), rename (the temp file written and checked),
# start (config.xml replaced, the MID not started yet).
failpoint() {
    [ -f "$MIDFLEET/failpoints/$1" ] || return 0
    # Digits only, at most three, no leading zero (sh reads 08 as octal).
    failpoint_seconds=$(head -c 8 -- "$MIDFLEET/failpoints/$1" | tr -cd '0-9' | sed 's/^0*//' | cut -c1-3)
    [ -n "$failpoint_seconds" ] || failpoint_seconds=0
    [ "$failpoint_seconds" -le 120 ] || failpoint_seconds=120
    journal failpoint "$1"
    while [ "$failpoint_seconds" -gt 0 ] && [ "$interrupted" = 0 ]; do
        sleep 1
        failpoint_seconds=$((failpoint_seconds - 1))
    done
}

# ==== end of the TEST HOOK (65-failpoints.sh) ===============================
# Nothing after this line belongs to the hook; 70-actions.sh calls
# `failpoint` between its steps.
# ============================================================================

