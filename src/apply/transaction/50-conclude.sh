# ==== part 50-conclude.sh: the end of a run =================================
# Owns: `conclude` (result, history.jsonl, `end`, the journal moved, the
# staged files removed, the lock released, then `end` to progress), and
# `on_exit` with the EXIT trap, the last resort.
# Must not: conclude twice; append `end` to progress before the lock is
# released and the staged files are gone (midfleet reads it as: settled).
# ============================================================================

# --- the end ------------------------------------------------------------------------

# conclude RESULT [REASON...]: unlock, result, history, end; then move the
# journal, remove the staged files and release the lock. An `error` (nothing
# changed) after which the MID this run stopped did not start again is
# `failed recover-HEALTH_REASON REASON...`: the MID is down.
conclude() {
    [ "$concluded" = 1 ] && return 0
    concluded=1
    if [ "$1" = error ] && [ -n "$recover_failed" ]; then
        shift
        set -- failed "recover-$recover_failed" "$@"
    fi
    result=$1
    [ "$lock_held" = 1 ] && journal unlock
    journal result "$@"
    printf '%s\n' "$result" >"$RUN_DIR/result.tmp" && mv -f -- "$RUN_DIR/result.tmp" "$RUN_DIR/result"
    if [ -f "$RUN_DIR/history.json" ] && [ -n "${MIDFLEET:-}" ] && [ -d "$MIDFLEET" ]; then
        history_head=
        IFS= read -r history_head <"$RUN_DIR/history.json"
        clock
        history_line="$history_head,\"result\":\"$result\",\"finished\":$now}"
        printf '%s\n' "$history_line" >>"$MIDFLEET/history.jsonl"
    fi
    # `end` goes to the journal now, but to progress (what the staging
    # session follows) only once everything below is done: midfleet
    # reports the host when it reads `end`, and a next run must find the
    # lock released and the staged files gone.
    clock
    end_line="$now end"
    printf '%s\n' "$end_line" >>"$journal_file" 2>/dev/null
    if [ "$lock_held" = 1 ]; then
        journal_target=$RUN_DIR/journal
        [ -n "$backup_dir" ] && [ -d "$backup_dir" ] && journal_target=$backup_dir/journal
        mv -f -- "$journal_file" "$journal_target"
        journal_file=$journal_target
    fi
    rm -f -- "$RUN_DIR/new.xml" "$RUN_DIR/original.xml" "$RUN_DIR/current.xml" \
        "$RUN_DIR/config.new" "$RUN_DIR/.acl" "$RUN_DIR/wrapper-new.conf" \
        "$RUN_DIR/wrapper-original.conf" "$RUN_DIR/current-wrapper.conf" "$RUN_DIR/wrapper.new" \
        "$scratch_agent" "$scratch_wrapper" "$start_mark" "$marker"
    rm -rf -- "$RUN_DIR/security.new" "$RUN_DIR/security.old" "$RUN_DIR/keystore.new" \
        "$RUN_DIR/keystore.old"
    [ "$lock_held" = 1 ] && release_lock
    printf '%s\n' "$end_line" >>"$RUN_DIR/progress" 2>/dev/null
    return 0
}

# The last resort, should the shell exit anywhere else (it should not).
on_exit() {
    [ "$concluded" = 1 ] && return
    if [ "$changed" = 1 ] && [ "$ACTION" = rollback ]; then
        put_back_current script-exit
    elif [ "$changed" = 1 ]; then
        roll_back script-exit
    else
        [ -n "$config_tmp" ] && rm -f -- "$config_tmp"
        [ -n "$wrapper_tmp" ] && rm -f -- "$wrapper_tmp"
        [ "$stopped_by_us" = 1 ] && recover_start
        conclude error script-exit
    fi
}
trap on_exit EXIT

