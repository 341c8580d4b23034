# ==== part 60-parameters.sh: parameters and refusals before the lock ========
# Owns: `fail_early`; reading RUN_DIR/params.sh and checking every value;
# whether wrapper-override.conf takes part (`with_wrapper`) and its folder;
# the folder handles (MIDFLEET, LOCK, AGENT, config_dir, CONFIG as
# descriptor paths) once open_folders has checked them; the staged files;
# mid_sh_user's answer; rollback_reserve and the lease check.
# Must not: take the lock, touch the MID or change a file: every refusal
# here is `result error REASON` with nothing changed.
# ============================================================================

# --- parameters -----------------------------------------------------------------

fail_early() {
    conclude error "$1"
    exit 1
}

[ -r "$RUN_DIR/params.sh" ] || fail_early params-missing
sh -n "$RUN_DIR/params.sh" 2>/dev/null || fail_early params-syntax
# shellcheck disable=SC1091
. "$RUN_DIR/params.sh"
RUN=${RUN:-} MID_HOME=${MID_HOME:-} CONFIG=${CONFIG:-} ACTION=${ACTION:-}
SERVICE_KIND=${SERVICE_KIND:-} SERVICE_UNIT=${SERVICE_UNIT:-}
START_COMMAND=${START_COMMAND:-} STOP_COMMAND=${STOP_COMMAND:-} STATUS_COMMAND=${STATUS_COMMAND:-}
EXPECT_USER=${EXPECT_USER:-} ROLLBACK_USER=${ROLLBACK_USER:-} KEY_PAIR_RESET=${KEY_PAIR_RESET:-0}
DEADLINE=${DEADLINE:-} HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-} STOP_TIMEOUT=${STOP_TIMEOUT:-}
KEEP_BACKUPS=${KEEP_BACKUPS:-5} RESTORE_FROM=${RESTORE_FROM:-} WRAPPER=${WRAPPER:-0}

case $RUN in '' | *[!A-Za-z0-9._-]* | .*) fail_early params-run ;; esac
for absolute in "$MID_HOME" "$CONFIG"; do
    case $absolute in /*) ;; *) fail_early params-path ;; esac
    case $absolute in *"$newline"*) fail_early params-path ;; esac
done
for number in "$DEADLINE" "$HEALTH_TIMEOUT" "$STOP_TIMEOUT" "$KEEP_BACKUPS"; do
    case $number in '' | *[!0-9]*) fail_early params-number ;; esac
done
[ "$KEEP_BACKUPS" -ge 1 ] || fail_early params-number
case $KEY_PAIR_RESET in 0 | 1) ;; *) fail_early params-key-pair-reset ;; esac
case $WRAPPER in 0 | 1) ;; *) fail_early params-wrapper ;; esac
case $ACTION in apply | start | restart | rollback) ;; *) fail_early params-action ;; esac
case $SERVICE_KIND in
    systemd) [ -n "$SERVICE_UNIT" ] || fail_early params-service ;;
    mid.sh) ;;
    commands)
        if [ -z "$START_COMMAND" ] || [ -z "$STOP_COMMAND" ] || [ -z "$STATUS_COMMAND" ]; then
            fail_early params-service
        fi ;;
    *) fail_early params-service ;;
esac
MIDFLEET_SHOWN=$MID_HOME/.midfleet
config_name=${CONFIG##*/}
config_path=${CONFIG%/*}
[ -n "$config_path" ] || config_path=/
case $config_name in '' | . | ..) fail_early params-path ;; esac
open_folders || fail_early "$folders_reason"
MIDFLEET=/proc/self/fd/5
LOCK=$MIDFLEET/lock
AGENT=/proc/self/fd/8
config_dir=/proc/self/fd/7
CONFIG=$config_dir/$config_name
case $ACTION in
    apply)
        if { [ ! -s "$RUN_DIR/new.xml" ] && [ "$WRAPPER" != 1 ]; } || [ ! -f "$RUN_DIR/original.xml" ]; then
            fail_early staged-files-missing
        fi ;;
    rollback)
        case $RESTORE_FROM in '' | *[!A-Za-z0-9._-]* | .*) fail_early no-backup ;; esac
        [ -f "$MIDFLEET/backups/$RESTORE_FROM/config.xml" ] || fail_early no-backup ;;
esac
case $ACTION in
    apply | rollback)
        # Refused before anything reads it (a FIFO would block a reader,
        # a link would lead it elsewhere); read_config checks again
        # through the descriptor it reads from.
        if [ ! -f "$CONFIG" ] || [ -L "$CONFIG" ]; then
            fail_early config-not-a-regular-file
        fi ;;
esac
# conf/wrapper-override.conf takes part when the plan edits it, or when
# the backup a rollback restores holds it (with_wrapper): its folder is
# then opened and checked as config.xml's is, before anything changes.
with_wrapper=0
case $ACTION in
    apply) with_wrapper=$WRAPPER ;;
    rollback) [ -f "$MIDFLEET/backups/$RESTORE_FROM/$wrapper_name" ] && with_wrapper=1 ;;
esac
if [ "$with_wrapper" = 1 ]; then
    open_wrapper_folder || fail_early "$folders_reason"
    if [ "$ACTION" = apply ] &&
        { [ ! -f "$RUN_DIR/wrapper-new.conf" ] || [ ! -f "$RUN_DIR/wrapper-original.conf" ]; }; then
        fail_early staged-files-missing
    fi
    if [ -L "$wrapper_file" ] || { [ -e "$wrapper_file" ] && [ ! -f "$wrapper_file" ]; }; then
        fail_early wrapper-not-a-regular-file
    fi
fi
mid_sh_user || fail_early "$mid_sh_reason"

# The lease must hold the worst case: the forward stop and health, and a
# rollback's stop and health after them.
rollback_reserve=$((STOP_TIMEOUT + HEALTH_TIMEOUT + 5))
case $ACTION in
    apply | rollback) lease_needed=$((STOP_TIMEOUT + HEALTH_TIMEOUT + rollback_reserve)) ;;
    restart) lease_needed=$((STOP_TIMEOUT + HEALTH_TIMEOUT)); rollback_reserve=0 ;;
    start) lease_needed=$HEALTH_TIMEOUT; rollback_reserve=0 ;;
esac
clock
[ $((DEADLINE - now)) -ge "$lease_needed" ] || fail_early lease-too-short

