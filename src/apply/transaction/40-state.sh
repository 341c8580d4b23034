# ==== part 40-state.sh: the state record ====================================
# Owns: what a healthy MID leaves in .midfleet: `record_state`
# (config.after as the MID rewrote it, state.json) and `install_file`
# (0600, temp file + rename); the journal step `state`.
# Must not: keep midfleet's plaintext as config.after (with
# EXPECT_REWRITE=1 it waits for the MID's rewrite, else keeps none); write
# outside .midfleet.
# ============================================================================

# record_state: config.xml as the healthy MID left it, and state.json; both
# 0600, both temp + rename inside .midfleet. Journals `state …`.
record_state() {
    # When midfleet wrote plaintext the MID encrypts (EXPECT_REWRITE=1),
    # wait (up to 30 s) for the MID to rewrite config.xml: config.after
    # must hold its encrypted: values, never midfleet's plaintext. If it
    # does not rewrite in time, no config.after is kept (the next plan then
    # rewrites once instead of trusting a plaintext copy).
    if [ "${EXPECT_REWRITE:-0}" = 1 ] && [ -f "$RUN_DIR/new.xml" ]; then
        clock
        rewrite_end=$((now + 30))
        while ! read_config || cmp -s -- "$RUN_DIR/current.xml" "$RUN_DIR/new.xml"; do
            clock
            if [ "$now" -ge "$rewrite_end" ]; then
                rm -f -- "$MIDFLEET/config.after" "$RUN_DIR/current.xml"
                if [ -f "$RUN_DIR/state.json" ] && ! install_file "$RUN_DIR/state.json" "$MIDFLEET/state.json"; then
                    journal state fail state-json
                    return 1
                fi
                journal state no-rewrite
                return 0
            fi
            sleep "$tick"
        done
    elif ! read_config; then
        journal state fail config-after
        return 1
    fi
    if ! install_file "$RUN_DIR/current.xml" "$MIDFLEET/config.after"; then
        rm -f -- "$RUN_DIR/current.xml"
        journal state fail config-after
        return 1
    fi
    rm -f -- "$RUN_DIR/current.xml"
    if [ -f "$RUN_DIR/state.json" ] && ! install_file "$RUN_DIR/state.json" "$MIDFLEET/state.json"; then
        journal state fail state-json
        return 1
    fi
    journal state
    return 0
}

# install_file SOURCE TARGET: TARGET (0600) gets SOURCE's bytes atomically.
install_file() {
    install_tmp=$(mktemp "$MIDFLEET/.install.XXXXXX") || return 1
    if cat -- "$1" >"$install_tmp" && cmp -s -- "$1" "$install_tmp" &&
        mv -f -- "$install_tmp" "$2"; then
        return 0
    fi
    rm -f -- "$install_tmp"
    return 1
}

