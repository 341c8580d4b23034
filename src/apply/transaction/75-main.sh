# ==== part 75-main.sh: dispatch =============================================
# Owns: running the ACTION and the exit status (0 only for `applied`).
# Must not: anything else.
# ============================================================================

case $ACTION in
    apply) run_apply ;;
    start) run_start ;;
    restart) run_restart ;;
    rollback) run_rollback ;;
esac
[ "$concluded" = 1 ] || conclude error script-exit
trap - EXIT
[ "$result" = applied ]
