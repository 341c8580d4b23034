# journal STEP [DETAIL...]: one line, never a secret; also appended to
# RUN_DIR/progress, which the staging session follows.
journal() {
    clock
    journal_line="$now $*"
    printf '%s\n' "$journal_line" >>"$journal_file" 2>/dev/null
    printf '%s\n' "$journal_line" >>"$RUN_DIR/progress" 2>/dev/null
    return 0
}

