# ==== part 20-service.sh: service control ===================================
# Owns: `service start|stop|status` for SERVICE_KIND systemd, mid.sh (as
# the user 55-folders.sh chose, clean environment, umask 022, without
# midfleet's folder descriptors) and commands; `running`, `stop_mid`,
# `start_mid`, `recover_start`; the journal steps `stop` and `start`.
# Must not: run a command outside `bounded`; decide who runs mid.sh
# (55-folders.sh); read the MID's logs (25-health.sh); touch a file.
# ============================================================================

# service start|stop|status SECONDS
service() {
    case $SERVICE_KIND in
        systemd)
            if [ "$1" = status ]; then
                bounded "$2" systemctl is-active --quiet -- "$SERVICE_UNIT"
            else
                bounded "$2" systemctl "$1" -- "$SERVICE_UNIT"
            fi ;;
        mid.sh)
            # As mid_sh_user says, without midfleet's folder descriptors,
            # with the user's own HOME, USER and LOGNAME, and the usual
            # umask (not this script's 077: the MID's files keep the
            # modes its own start gives them).
            bounded_close=1
            umask 022
            if [ -z "$mid_sh_as" ]; then
                bounded "$2" "$mid_sh" "$1"
            elif [ "$mid_sh_prefix" = su ]; then
                # shellcheck disable=SC2016 # su's shell expands them
                bounded "$2" su -s /bin/sh -c 'exec "$0" "$1"' "$mid_sh_name" "$mid_sh" "$1" \
                    >/dev/null 2>&1
            else
                # A clean environment, and no output into root's folder:
                # the MID it starts lives on with what it inherits.
                # shellcheck disable=SC2086 # the prefix is words midfleet made
                bounded "$2" $mid_sh_prefix env -i PATH="$mid_sh_path" HOME="$mid_sh_home" \
                    USER="${mid_sh_name:-$mid_sh_as}" LOGNAME="${mid_sh_name:-$mid_sh_as}" SHELL=/bin/sh \
                    ${LANG:+LANG="$LANG"} "$mid_sh" "$1" >/dev/null 2>&1
            fi
            service_status=$?
            bounded_close=0
            umask 077
            return "$service_status" ;;
        commands)
            case $1 in
                start) service_command=$START_COMMAND ;;
                stop) service_command=$STOP_COMMAND ;;
                *) service_command=$STATUS_COMMAND ;;
            esac
            bounded "$2" sh -c "$service_command" ;;
    esac
}

running() {
    service status 30 >/dev/null 2>&1
}

# stop_mid FLOOR [RUNNING]: stops a running MID within STOP_TIMEOUT (and
# the deadline), then confirms with status. RUNNING: 1 or 0 when the
# caller has just asked the service (no second status check). Journals
# `stop …`.
stop_mid() {
    case ${2:-} in
        1) stop_found=1 ;;
        0) stop_found=0 ;;
        *) if running; then stop_found=1; else stop_found=0; fi ;;
    esac
    if [ "$stop_found" = 0 ]; then
        journal stop already-stopped
        return 0
    fi
    limit "$STOP_TIMEOUT" "${1:-0}"
    stop_limit=$limit_value
    if [ "$stop_limit" -lt 1 ]; then
        stop_failure=deadline
        journal stop fail deadline
        return 1
    fi
    clock
    stop_began=$now
    service stop "$stop_limit"
    stop_status=$?
    stopped_by_us=1
    while :; do
        if ! running; then
            journal stop
            return 0
        fi
        if [ "$stop_status" = 124 ]; then
            stop_failure=timeout
            journal stop fail timeout
            return 1
        fi
        clock
        if [ $((now - stop_began)) -ge "$stop_limit" ]; then
            stop_failure=still-running
            journal stop fail still-running
            return 1
        fi
        sleep "$tick"
    done
}

# start_mid SECONDS: runs the start command. Journals `start …`.
start_mid() {
    if [ "$1" -lt 1 ]; then
        journal start fail deadline
        return 1
    fi
    service start "$1"
    start_status=$?
    case $start_status in
        0) journal start; stopped_by_us=0; return 0 ;;
        124) journal start fail timeout ;;
        *) journal start fail "exit-$start_status" ;;
    esac
    return 1
}

# recover_start: after a failure that changed nothing, start the MID again
# when this run found it running and it is not, and wait for its login as
# before (ROLLBACK_USER: config.xml is the one it ran on). A MID that does
# not come back sets recover_failed to the health reason: the run then
# ends `failed`, not `error` (conclude), for the MID this run stopped is
# down (a full disk, say, where its start cannot write).
recover_start() {
    if [ "$was_running" = 1 ] && ! running; then
        clock
        if ! start_and_check "$ROLLBACK_USER" $((now + HEALTH_TIMEOUT)) 0; then
            recover_failed=$health_reason
        fi
    fi
    stopped_by_us=0
}

