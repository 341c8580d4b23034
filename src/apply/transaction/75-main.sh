case $ACTION in
    apply) run_apply ;;
    start) run_start ;;
    restart) run_restart ;;
    rollback) run_rollback ;;
esac
[ "$concluded" = 1 ] || conclude error script-exit
trap - EXIT
[ "$result" = applied ]
