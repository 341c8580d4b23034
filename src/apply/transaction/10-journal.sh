# ==== part 10-journal.sh: the journal =======================================
# Owns: `journal STEP [DETAIL...]`, the one writer of journal lines (to
# journal_file and RUN_DIR/progress); `journal_detail`, a line to
# RUN_DIR/progress only (the MID's log line that decided health).
# Must not: write a secret or any value from config.xml, new.xml or
# original.xml; fail the run when a write fails; decide where journal_file
# points (45-lock.sh and 50-conclude.sh do).
# ============================================================================

# journal STEP [DETAIL...]: one line, never a secret; also appended to
# RUN_DIR/progress, which the staging session follows.
journal() {
    clock
    journal_line="$now $*"
    printf '%s\n' "$journal_line" >>"$journal_file" 2>/dev/null
    printf '%s\n' "$journal_line" >>"$RUN_DIR/progress" 2>/dev/null
    return 0
}

# journal_detail STEP [DETAIL...]: a line midfleet shows (the MID's log
# line that decided health) to RUN_DIR/progress only: it may name the
# MID's user, which the journal never holds; never a secret.
journal_detail() {
    clock
    printf '%s %s\n' "$now" "$*" >>"$RUN_DIR/progress" 2>/dev/null
    return 0
}

