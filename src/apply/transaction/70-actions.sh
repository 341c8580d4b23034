# ==== part 70-actions.sh: the actions =======================================
# Owns: the order of steps of apply, start, restart and rollback: the
# checks before the stop (interrupted_before_change, stale_before_stop,
# writable_or_conclude, keystore_small_or_conclude,
# safe_reads_or_conclude), stop_or_conclude,
# check_plan, forward_end, roll_back, run_apply, run_start, run_restart,
# run_rollback, put_back_current.
# Must not: do a step's work itself (the parts above do); change anything
# after an interrupt before the first change; leave a path that does not
# conclude.
# ============================================================================

# check_plan: config.xml still holds the bytes the plan was made from.
# Journals `check …`; concludes on a mismatch. (The MID is stopped, or was
# found stopped, so the file is stable.)
check_plan() {
    if [ "$ACTION" = start ] && running; then
        journal check stale running
        conclude stale running
        return 1
    fi
    if [ -f "$RUN_DIR/original.xml" ]; then
        if ! read_config; then
            journal check fail "$read_reason"
            recover_start
            conclude error "$read_reason"
            return 1
        fi
        if ! cmp -s -- "$RUN_DIR/current.xml" "$RUN_DIR/original.xml"; then
            journal check stale
            recover_start
            conclude stale
            return 1
        fi
    fi
    if [ "$ACTION" = apply ] && [ "$WRAPPER" = 1 ] && ! wrapper_as_planned; then
        if [ -n "$read_reason" ]; then
            journal check fail "$read_reason"
            recover_start
            conclude error "$read_reason"
            return 1
        fi
        journal check stale wrapper
        recover_start
        conclude stale wrapper
        return 1
    fi
    journal check ok
    return 0
}

# stale_before_stop: config.xml already differs from the bytes the plan
# was made from, before the MID is touched: `check stale`, and the MID is
# left as it is. (check_plan still compares after the stop: the file may
# change until the MID is down.) Returns 0 when it concluded.
stale_before_stop() {
    if [ -f "$RUN_DIR/original.xml" ] && read_config &&
        ! cmp -s -- "$RUN_DIR/current.xml" "$RUN_DIR/original.xml"; then
        journal check stale
        conclude stale
        return 0
    fi
    if [ "$ACTION" = apply ] && [ "$WRAPPER" = 1 ] && read_wrapper &&
        ! cmp -s -- "$RUN_DIR/current-wrapper.conf" "$RUN_DIR/wrapper-original.conf"; then
        journal check stale wrapper
        conclude stale wrapper
        return 0
    fi
    return 1
}

# interrupted_before_change: an interrupt before the first change ends the
# run with nothing changed.
interrupted_before_change() {
    [ "$interrupted" = 1 ] || return 1
    [ -n "$config_tmp" ] && rm -f -- "$config_tmp" && config_tmp=
    [ -n "$wrapper_tmp" ] && rm -f -- "$wrapper_tmp" && wrapper_tmp=
    recover_start
    conclude error interrupted
    return 0
}

stop_or_conclude() {
    running && was_running=1
    if ! stop_mid 0 "$was_running"; then
        # Nothing changed: the MID runs on as it was, or is started again.
        recover_start
        conclude error "stop-$stop_failure"
        return 1
    fi
    return 0
}

# roll_back REASON: after a failure past the first change.
roll_back() {
    journal rollback "$1"
    stop_mid 5
    if ! restore_from "$backup_dir"; then
        clock
        start_and_check "$ROLLBACK_USER" $((now + HEALTH_TIMEOUT)) 0
        conclude failed restore "$(shown "$backup_dir")"
        return
    fi
    changed=0
    clock
    if start_and_check "$ROLLBACK_USER" $((now + HEALTH_TIMEOUT)) 0; then
        conclude rolled_back "$1"
    else
        conclude failed "rollback-$health_reason" "$(shown "$backup_dir")"
    fi
}

# forward_end: sets forward_end_value to when the forward health wait
# ends: HEALTH_TIMEOUT from now, leaving the rollback its reserve.
forward_end() {
    clock
    forward_end_value=$((now + HEALTH_TIMEOUT))
    forward_limit=$((DEADLINE - rollback_reserve))
    [ "$forward_end_value" -gt "$forward_limit" ] && forward_end_value=$forward_limit
    return 0
}

# writable_or_conclude: before the MID is stopped, a real file created
# (and removed) in the run folder — on config.xml's mount, so a read-only
# mount shows here — and config.xml's folder writable by this login: else
# the run ends here, with nothing changed. (`test -w` alone is not enough:
# busybox answers it from the mode bits, yes to root.)
writable_or_conclude() {
    if [ -w "$config_dir/." ] && probe=$(mktemp "$RUN_DIR/.probe.XXXXXX" 2>/dev/null); then
        rm -f -- "$probe"
        return 0
    fi
    journal check fail not-writable
    conclude error config-folder-not-writable
    return 1
}

# safe_reads_or_conclude WITH_KEYSTORE: before anything changes, on a
# host whose dd is not GNU's, every folder the action will read in —
# config.xml's, agent/logs, conf/ when wrapper-override.conf takes part
# (its held fd 9), and with WITH_KEYSTORE=1 agent/security, agent/keystore
# and every folder below them — passes `swap_proof` as it is now; else
# the run ends here, nothing changed, rather than fail its reads midway (a
# health that cannot read the logs would roll back a good MID). Each read
# judges its folder again (`read_held`): a folder swapped since is not
# read. (The keystore's `find` states swap_proof's rule for many folders
# at once: the owner root or this login, no group, other or sticky bit.)
safe_reads_or_conclude() {
    [ "$have_gnu_dd" = 1 ] && return 0
    : "${proof_me:=$(id -u)}"
    safe_read_folder config "$config_dir" || return 1
    safe_read_folder logs "$AGENT/logs" || return 1
    if [ "$with_wrapper" = 1 ]; then
        safe_read_folder conf /proc/self/fd/9 || return 1
    fi
    if [ "$1" = 1 ] && [ -n "$(find "$AGENT/security/." "$AGENT/keystore/." -type d \
        \( -perm -1000 -o -perm -020 -o -perm -002 -o \( ! -user 0 ! -user "$proof_me" \) \) \
        -print 2>/dev/null | head -c 1)" ]; then
        safe_reads_fail keystore
        return 1
    fi
}
# safe_read_folder ROLE FOLDER: FOLDER passes `swap_proof`, or the run
# ends naming ROLE (a fixed word: a path could hold a newline). A folder
# that is not there holds nothing to read.
safe_read_folder() {
    [ -d "$2" ] || return 0
    (cd -- "$2/" 2>/dev/null && swap_proof) && return 0
    safe_reads_fail "$1"
    return 1
}
safe_reads_fail() {
    journal check fail no-safe-read "$1"
    conclude error no-safe-read "$1"
}

# keystore_small_or_conclude WITH_KEYSTORE: before the MID is stopped,
# the keystore folders hold at most keystore_limit entries (a MID's hold a
# handful): the MID's user may fill them, and their backup must end well
# within the lease.
keystore_limit=1000
keystore_small_or_conclude() {
    [ "$1" = 1 ] || return 0
    keystore_count=$(find "$AGENT/security/." "$AGENT/keystore/." 2>/dev/null |
        head -n "$((keystore_limit + 1))" | wc -l)
    [ "$keystore_count" -le "$keystore_limit" ] && return 0
    journal check fail keystore-too-large
    conclude error keystore-too-large
    return 1
}

run_apply() {
    take_lock || return
    interrupted_before_change && return
    safe_reads_or_conclude "$KEY_PAIR_RESET" || return
    stale_before_stop && return
    writable_or_conclude || return
    keystore_small_or_conclude "$KEY_PAIR_RESET" || return
    stop_or_conclude || return
    check_plan || return
    interrupted_before_change && return
    failpoint backup
    take_backup "$KEY_PAIR_RESET" || return
    failpoint write
    # Both files are built and checked before either is renamed into
    # place; a new config.xml only when it changes (new.xml not empty).
    if [ -s "$RUN_DIR/new.xml" ] && ! prepare_config "$RUN_DIR/new.xml" "$config_stat"; then
        journal write fail "$prepare_reason"
        recover_start
        conclude error "$prepare_reason"
        return
    fi
    if [ "$WRAPPER" = 1 ] && ! prepare_wrapper "$RUN_DIR/wrapper-new.conf" "$wrapper_stat"; then
        [ -n "$config_tmp" ] && rm -f -- "$config_tmp" && config_tmp=
        journal write fail "wrapper-$prepare_reason"
        recover_start
        conclude error "wrapper-$prepare_reason"
        return
    fi
    journal write
    failpoint rename
    interrupted_before_change && return
    if [ -n "$config_tmp" ]; then
        if ! commit_config; then
            [ -n "$wrapper_tmp" ] && rm -f -- "$wrapper_tmp" && wrapper_tmp=
            journal rename fail
            recover_start
            conclude error rename
            return
        fi
        changed=1
        journal rename
    fi
    if [ -n "$wrapper_tmp" ]; then
        if ! commit_wrapper; then
            journal rename fail wrapper
            if [ "$changed" = 1 ]; then
                # config.xml is new already: both go back.
                roll_back rename-wrapper
            else
                recover_start
                conclude error rename-wrapper
            fi
            return
        fi
        changed=1
        journal rename wrapper
    fi
    failpoint start
    forward_end
    if start_and_check "$EXPECT_USER" "$forward_end_value" 1; then
        changed=0
        if record_state; then
            conclude applied
        else
            conclude applied state-not-recorded
        fi
    else
        roll_back "$health_reason"
    fi
}

run_start() {
    take_lock || return
    interrupted_before_change && return
    safe_reads_or_conclude 0 || return
    check_plan || return
    forward_end
    if start_and_check "$EXPECT_USER" "$forward_end_value" 1; then
        if record_state; then conclude applied; else conclude applied state-not-recorded; fi
    else
        conclude failed "$health_reason"
    fi
}

run_restart() {
    take_lock || return
    interrupted_before_change && return
    safe_reads_or_conclude 0 || return
    stale_before_stop && return
    stop_or_conclude || return
    check_plan || return
    interrupted_before_change && return
    forward_end
    if start_and_check "$EXPECT_USER" "$forward_end_value" 1; then
        if record_state; then conclude applied; else conclude applied state-not-recorded; fi
    else
        conclude failed "$health_reason"
    fi
}

# ACTION=rollback: the current files are saved first, then the named backup
# is restored; when the MID does not come up on it, the saved files go back.
run_rollback() {
    take_lock || return
    interrupted_before_change && return
    stale_before_stop && return
    writable_or_conclude || return
    source_dir=$MIDFLEET/backups/$RESTORE_FROM
    with_keystore=$KEY_PAIR_RESET
    [ -f "$source_dir/folders" ] && with_keystore=1
    safe_reads_or_conclude "$with_keystore" || return
    keystore_small_or_conclude "$with_keystore" || return
    stop_or_conclude || return
    check_plan || return
    interrupted_before_change && return
    take_backup "$with_keystore" || return
    changed=1
    if ! restore_from "$source_dir"; then
        put_back_current restore
        return
    fi
    forward_end
    if start_and_check "$ROLLBACK_USER" "$forward_end_value" 1; then
        changed=0
        if record_state; then conclude applied; else conclude applied state-not-recorded; fi
        return
    fi
    put_back_current "$health_reason"
}

# put_back_current REASON: ACTION=rollback failed; the files saved before
# it go back and the MID is started on them. Always `failed`.
put_back_current() {
    journal rollback "$1"
    stop_mid 5
    restore_from "$backup_dir" && changed=0
    limit "$HEALTH_TIMEOUT" 5
    start_mid "$limit_value"
    conclude failed "$1" "$(shown "$backup_dir")"
}

