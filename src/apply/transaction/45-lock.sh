# ==== part 45-lock.sh: the lock =============================================
# Owns: `.midfleet/lock` ("RUN DEADLINE"): take_lock (link(2), else an
# exclusive create; an expired lock is broken by rename and checked),
# holder_alive, lock_taken (the journal moves to .midfleet/journal, a dead
# run's is kept), release_lock; the journal step `lock`.
# Must not: break a lock whose lease lives or whose transaction still
# runs; remove a lock that names another run.
# ============================================================================

# --- lock -------------------------------------------------------------------------

# take_lock: `.midfleet/lock` holds "RUN DEADLINE", created by link(2)
# (atomic, and whole from its first instant). Returns 1 when another run
# holds it (result concluded).
take_lock() {
    printf '%s %s\n' "$RUN" "$DEADLINE" >"$RUN_DIR/lock" || {
        conclude error lock
        return 1
    }
    lock_attempts=0
    while [ "$lock_attempts" -lt 3 ]; do
        lock_attempts=$((lock_attempts + 1))
        if ln -- "$RUN_DIR/lock" "$LOCK" 2>/dev/null; then
            lock_taken
            journal lock
            return 0
        fi
        if [ ! -e "$LOCK" ]; then
            # No hard links here: an exclusive create (noclobber) instead.
            if (set -C; cat -- "$RUN_DIR/lock" >"$LOCK") 2>/dev/null; then
                lock_taken
                journal lock
                return 0
            fi
            [ -e "$LOCK" ] || { conclude error lock; return 1; }
        fi
        held_run='' held_deadline=''
        read -r held_run held_deadline <"$LOCK" 2>/dev/null
        case $held_deadline in '' | *[!0-9]*) held_deadline=0 ;; esac
        clock
        if [ "$now" -le "$held_deadline" ] || holder_alive "$held_run"; then
            journal lock held "$held_run"
            conclude locked "$held_run"
            return 1
        fi
        # Expired: take it away by rename, then make sure it was the lock
        # we read (another run may have broken it and taken it meanwhile).
        mv -f -- "$LOCK" "$RUN_DIR/lock.broken" 2>/dev/null || continue
        broken_run='' broken_deadline=''
        read -r broken_run broken_deadline <"$RUN_DIR/lock.broken" 2>/dev/null
        case $broken_deadline in '' | *[!0-9]*) broken_deadline=0 ;; esac
        if [ "$broken_run" != "$held_run" ] || [ "$broken_deadline" != "$held_deadline" ]; then
            ln -- "$RUN_DIR/lock.broken" "$LOCK" 2>/dev/null
            rm -f -- "$RUN_DIR/lock.broken"
            continue
        fi
        rm -f -- "$RUN_DIR/lock.broken"
        if ln -- "$RUN_DIR/lock" "$LOCK" 2>/dev/null; then
            lock_taken "$held_run"
            journal lock broken "$held_run"
            return 0
        fi
    done
    held_run=
    read -r held_run held_deadline <"$LOCK" 2>/dev/null
    journal lock held "$held_run"
    conclude locked "$held_run"
    return 1
}

# holder_alive RUN: the transaction of run RUN still runs (its pid, from
# its run folder, is alive in this boot and a transaction.sh): its lock is
# never broken, lease or not — two runs must never work on one MID.
holder_alive() {
    case $1 in '' | *[!A-Za-z0-9._-]* | .*) return 1 ;; esac
    [ "$1" != "$RUN" ] || return 1
    holder_pid=
    read -r holder_pid <"$MIDFLEET/runs/$1/pid" 2>/dev/null || return 1
    case $holder_pid in '' | *[!0-9]*) return 1 ;; esac
    holder_boot='' boot_now=''
    if read -r holder_boot <"$MIDFLEET/runs/$1/boot" 2>/dev/null &&
        read -r boot_now </proc/sys/kernel/random/boot_id 2>/dev/null &&
        [ "$holder_boot" != "$boot_now" ]; then
        return 1
    fi
    kill -0 "$holder_pid" 2>/dev/null || return 1
    case $(tr '\0' ' ' <"/proc/$holder_pid/cmdline" 2>/dev/null) in
        *transaction.sh*) return 0 ;;
    esac
    return 1
}

# lock_taken [OLD_RUN]: the journal is now .midfleet/journal. A journal
# left there belongs to a run that died without `end`: it is kept as that
# run's journal (or this run's previous-journal when its owner is unknown).
lock_taken() {
    lock_held=1
    if [ -e "$MIDFLEET/journal" ]; then
        leftover=$RUN_DIR/previous-journal
        if [ -n "${1:-}" ] && [ -d "$MIDFLEET/runs/$1" ] && [ ! -e "$MIDFLEET/runs/$1/journal" ]; then
            leftover=$MIDFLEET/runs/$1/journal
        fi
        mv -f -- "$MIDFLEET/journal" "$leftover" 2>/dev/null || rm -f -- "$MIDFLEET/journal"
    fi
    journal_file=$MIDFLEET/journal
}

release_lock() {
    released_run=''
    read -r released_run _ <"$LOCK" 2>/dev/null
    [ "$released_run" = "$RUN" ] && rm -f -- "$LOCK"
    lock_held=0
}

