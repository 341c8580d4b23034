# ==== part 25-health.sh: health =============================================
# Owns: whether the MID came up, logged in as the expected user, from the
# text its own logs (agent0.log.0, wrapper.log and their rotations) gained
# since `mark_logs`, in the shapes the MID writes: log_ids, mark_logs,
# new_text, log_from, the line shapes, seen_lines, failure_of, started,
# logged_in, `health`, `start_and_check`; the journal step `health`; the
# probe have_gnu_dd (30-files.sh, 32-wrapper.sh, 35-backup.sh and
# 70-actions.sh ask it too); the
# deciding log line and its number, to progress (`health_decided`).
# Must not: open a log through a link or a FIFO, copy more than log_cap
# bytes of one, write in agent/, or decide on a line of another shape or
# logger.
# ============================================================================

# --- health -------------------------------------------------------------------

# log_ids: sets agent_id, agent_rotated_id, wrapper_id and
# wrapper_rotated_id to "INODE SIZE" of agent0.log.0, agent0.log.1,
# wrapper.log and wrapper.log.1 ("- 0" for a file that is not there), with
# one `stat` for the four; logs_now to all four. Only regular files
# count: a link or a FIFO in their place is "not there".
log_ids() {
    agent_id='- 0' agent_rotated_id='- 0' wrapper_id='- 0' wrapper_rotated_id='- 0'
    # shellcheck disable=SC2046
    set -- $(cd -- "$AGENT/logs" 2>/dev/null &&
        stat -c '%n %i %s %A' -- agent0.log.0 agent0.log.1 wrapper.log wrapper.log.1 2>/dev/null)
    while [ "$#" -ge 4 ]; do
        case $4 in
            -*)
                case $1 in
                    agent0.log.0) agent_id="$2 $3" ;;
                    agent0.log.1) agent_rotated_id="$2 $3" ;;
                    wrapper.log) wrapper_id="$2 $3" ;;
                    wrapper.log.1) wrapper_rotated_id="$2 $3" ;;
                esac ;;
        esac
        shift 4
    done
    logs_now="$agent_id $agent_rotated_id $wrapper_id $wrapper_rotated_id"
}

# mark_logs: remembers where the two logs end, before a start, and how
# many lines they hold up to there (`lines_before`: the deciding line's
# number in its file).
mark_logs() {
    log_ids
    # shellcheck disable=SC2086
    set -- $agent_id $wrapper_id
    agent_inode=$1 agent_size=$2 wrapper_inode=$3 wrapper_size=$4
    agent_lines=$(lines_before "$AGENT/logs/agent0.log.0" "$agent_size")
    wrapper_lines=$(lines_before "$AGENT/logs/wrapper.log" "$wrapper_size")
    : >"$start_mark"
}

# lines_before FILE SIZE: the number of lines in FILE's first SIZE bytes;
# nothing past log_count_cap bytes (a log grown on purpose is not read
# through) or when FILE is a link or a FIFO. Read as log_from reads
# (without GNU dd a folder `read_held` refuses counts 0 lines: only after
# `safe_reads_or_conclude` passed it, so only when it changed since).
log_count_cap=67108864
lines_before() {
    [ "$2" -gt "$log_count_cap" ] && return 0
    [ "$2" -eq 0 ] && { echo 0; return 0; }
    if [ "$have_gnu_dd" = 1 ]; then
        lines_counted=$(dd if="$1" iflag=nofollow,nonblock,count_bytes count="$2" \
            bs=65536 status=none 2>/dev/null | wc -l)
    elif [ -f "$1" ] && [ ! -L "$1" ]; then
        lines_counted=$(read_held "$1" 0 "$2" | wc -l)
    else
        return 0
    fi
    echo $((lines_counted + 0))
}

# health_line KIND LOG LINE_PATTERN [SUFFIX]: the first line of what LOG
# (agent or wrapper) gained since the start that matches LINE_PATTERN (an
# ERE; with SUFFIX, the first that also ends with SUFFIX exactly), sent
# as `health-line FILE NUMBER TEXT` (or `health-last …`) to progress
# only (`journal_detail`: a log line names the MID's user, which the
# journal never holds). NUMBER is the line's number in FILE, or `+N` (its
# Nth line since the start) when FILE rotated or was too large to count.
# TEXT loses its control characters and is cut at 600 characters.
health_line() {
    case $2 in
        agent)
            hl_scratch=$scratch_agent hl_file=agent0.log.0 hl_base=$agent_lines
            hl_inode=$agent_inode hl_ids=$agent_id ;;
        *)
            hl_scratch=$scratch_wrapper hl_file=wrapper.log hl_base=$wrapper_lines
            hl_inode=$wrapper_inode hl_ids=$wrapper_id ;;
    esac
    hl_found=
    if [ "$3" = last ]; then
        hl_count=$(wc -l <"$hl_scratch" 2>/dev/null) || return 1
        hl_count=$((hl_count + 0))
        [ "$hl_count" -gt 0 ] || return 1
        hl_found="$hl_count:$(tail -n 1 -- "$hl_scratch" 2>/dev/null)"
    else
        hl_found=$(grep -n -E -e "$3" -- "$hl_scratch" 2>/dev/null | {
            while IFS= read -r hl_candidate; do
                case $hl_candidate in
                    *"$4") printf '%s\n' "$hl_candidate"; break ;;
                esac
            done
        })
    fi
    [ -n "$hl_found" ] || return 1
    hl_number=${hl_found%%:*}
    hl_text=$(printf '%s\n' "${hl_found#*:}" | tr -d '\000-\010\013-\037\177' | cut -c 1-600)
    # shellcheck disable=SC2086
    set -- "$1" $hl_ids
    if [ "$2" = "$hl_inode" ] && [ -n "$hl_base" ]; then
        hl_number=$((hl_base + hl_number))
    else
        hl_number="+$hl_number"
    fi
    journal_detail "$1" "$hl_file" "$hl_number" "$hl_text"
}

# health_decided REASON USER: the log line behind the health decision, to
# progress: the failure's own line; the login as USER when healthy; else
# (not running, timeout) the last line either log gained, for context.
health_decided() {
    case $1 in
        '') [ -z "$2" ] ||
            health_line health-line agent "${agent_line}" " Setting basic authentication with user $2" ;;
        could-not-authenticate | problem-while-decrypting | unable-to-load-keystore | xml-parser-error)
            health_line health-line agent "${agent_line}${failure_messages}\$" ||
                health_line health-line wrapper "${wrapper_line}${failure_messages}\$" ;;
        jvm-heap | jvm-not-created)
            health_line health-line wrapper "${wrapper_line}${jvm_messages}\$" ;;
        jvm-gave-up | jvm-exited)
            health_line health-line wrapper "${wrapper_own_line}${launch_messages}\$" ;;
        *) health_line health-last agent last || health_line health-last wrapper last ;;
    esac
    return 0
}

# new_text FILE ROTATED INODE SIZE "FILE_INODE FILE_SIZE" "ROTATED_INODE
# ROTATED_SIZE": what FILE gained since (INODE, SIZE), given both files'
# ids now (log_ids). Rotated (another inode) or truncated (smaller): all
# of FILE, and before it the rest of ROTATED past SIZE when ROTATED is the
# old file renamed or was written since the start.
new_text() {
    new_file=$1 new_rotated=$2 new_inode=$3 new_size=$4
    # shellcheck disable=SC2086
    set -- $5 $6
    if [ "$1" != - ] && [ "$1" = "$new_inode" ] && [ "$2" -ge "$new_size" ]; then
        log_from "$new_file" "$new_size"
        return
    fi
    if [ "$new_inode" != - ] && [ "$3" != - ] && [ -f "$new_rotated" ]; then
        if [ "$3" = "$new_inode" ] ||
            [ -n "$(find "$new_rotated" -prune -newer "$start_mark" 2>/dev/null)" ]; then
            log_from "$new_rotated" "$new_size"
        fi
    fi
    [ "$1" != - ] && log_from "$new_file" 0
}

# log_from FILE OFFSET: FILE's bytes from OFFSET on, at most log_cap of
# them. The logs are in the MID user's folder: with GNU dd, never through
# a link (O_NOFOLLOW) and never waiting on a FIFO (O_NONBLOCK); elsewhere
# through `read_held` (22-swap-proof.sh): a regular file read inside its
# folder, held, only when no user but root and this login can change
# that folder. The cap: a MID logs its login
# within its first kilobytes after a start, and the MID's user can grow a
# log by any size in an instant (a sparse file) — root copies no more
# than this into its run folder, however large the log.
log_cap=1048576
have_gnu_dd=0
dd if=/dev/null iflag=nofollow,nonblock,skip_bytes,count_bytes skip=0 count=1 status=none 2>/dev/null &&
    have_gnu_dd=1

log_from() {
    if [ "$have_gnu_dd" = 1 ]; then
        dd if="$1" iflag=nofollow,nonblock,skip_bytes,count_bytes skip="$2" count="$log_cap" \
            bs=65536 status=none 2>/dev/null
    else
        read_held "$1" "$2" "$log_cap"
    fi
}

# Health reads only lines in the shapes the MID itself writes, from the
# text its logs gained since the start (`new_text`):
#   agent0.log.0: `MM/dd/yy HH:mm:ss (mmm) THREAD MESSAGE`, THREAD the
#   MID's own startup loggers (MIDServer, StartupSequencer), and MESSAGE
#   one of the MID's login lines whole, optionally after `SEVERE *** ERROR
#   *** `;
#   wrapper.log: `LEVEL | jvm N | yyyy/MM/dd HH:mm:ss | MESSAGE`, the
#   JVM's own output, for the failures a JVM that dies at start leaves
#   only there (also the JVM's refusal of its heap: `Could not reserve
#   enough space for … object heap`);
#   wrapper.log: `LEVEL | wrapper | yyyy/MM/dd HH:mm:ss | MESSAGE`, the
#   Tanuki wrapper's own lines, for a JVM that cannot start at all (`JVM
#   exited while loading the application.`, and after its relaunches
#   `There were 5 failed launches in a row, … Giving up.`).
# A line about another system ("Could not authenticate (bad key)" from a
# probe) or from another logger decides nothing. Success counts only from
# the agent log. Anyone who can write the MID's logs — the MID's user —
# can still write such lines: with an `instance:` section the MID's
# ecc_agent record, Up as the new user, is the proof (midfleet waits for
# it after `health ok`); docs/reliability.md says what the log proof is.
agent_line='^[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \([0-9]{3}\) (MIDServer|StartupSequencer) (SEVERE )?(\*\*\* ERROR \*\*\* )?'
wrapper_line='^(INFO|ERROR|STATUS|WARN|FATAL|DEBUG) *\| jvm [0-9]+ *\| [0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})? \| (SEVERE )?(\*\*\* ERROR \*\*\* )?'
wrapper_own_line='^(INFO|ERROR|STATUS|WARN|FATAL|DEBUG|ADVICE) *\| wrapper *\| [0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})? \| '
jvm_messages="(Could not reserve enough space for .*object heap\.?|Invalid maximum heap size: .*|Error: Could not create the Java Virtual Machine\.)"
launch_messages="(JVM exited while loading the application\.|There were [0-9]+ failed launches in a row, each lasting less than [0-9]+ seconds\. +Giving up\.)"
failure_messages="(Could not authenticate user '.*' on the ServiceNow instance\\.|Unable to unsecure parameter [^ ]+: Problem while decrypting.*|Unable to load keystore.*|XML parser error.*)"
agent_messages="(MID Server started|Successfully connected to instance: .*|Setting basic authentication with user .*|$failure_messages)"

# seen_lines: the lines health decides on, one per line, as `agent:MESSAGE`
# or `wrapper:MESSAGE`, from both new texts (one sed each).
seen_lines() {
    sed -n -E "s#${agent_line}${agent_messages}\$#agent:\\4#p" -- "$scratch_agent" 2>/dev/null
    sed -n -E -e "s#${wrapper_line}${failure_messages}\$#wrapper:\\5#p" \
        -e "s#${wrapper_line}${jvm_messages}\$#wrapper:\\5#p" \
        -e "s#${wrapper_own_line}${launch_messages}\$#wrapper:\\3#p" -- "$scratch_wrapper" 2>/dev/null
}

# failure_of SEEN: sets health_reason to the first failure in SEEN
# (seen_lines) as a word, or to nothing. No subshell: this runs each tick.
failure_of() {
    case $1 in
        *':Could not authenticate user '*) health_reason=could-not-authenticate ;;
        *':Unable to unsecure parameter '*) health_reason=problem-while-decrypting ;;
        *':Unable to load keystore'*) health_reason=unable-to-load-keystore ;;
        *':XML parser error'*) health_reason=xml-parser-error ;;
        # A JVM that cannot start: the heap it was given (the JVM's own
        # line) before the wrapper's lines about the launch.
        *':Could not reserve enough space for '* | *':Invalid maximum heap size: '*) health_reason=jvm-heap ;;
        *':Error: Could not create the Java Virtual Machine.'*) health_reason=jvm-not-created ;;
        *':There were '*' failed launches in a row'*) health_reason=jvm-gave-up ;;
        *':JVM exited while loading the application.'*) health_reason=jvm-exited ;;
        *) health_reason= ;;
    esac
}

# started SEEN: the agent log says the MID is up.
started() {
    case "$newline$1$newline" in
        *"${newline}agent:MID Server started$newline"* | *"${newline}agent:Successfully connected to instance: "*) return 0 ;;
    esac
    return 1
}

# logged_in USER SEEN: the agent log says the MID uses USER (the whole
# name: `svc` is not `svc_mid`).
logged_in() {
    [ -z "$1" ] && return 0
    case "$newline$2$newline" in
        *"${newline}agent:Setting basic authentication with user $1$newline"*) return 0 ;;
    esac
    return 1
}

# health USER END FORWARD: waits until END (epoch) for the MID started after
# mark_logs to log in as USER. FORWARD=1: an interrupt ends the wait.
# Sets health_reason; journals `health …`. Each tick looks at the logs'
# ids (one `stat`); only when they changed does it read what is new and
# decide again from the text.
health() {
    health_user=$1 health_end=$2 health_forward=$3
    health_ticks=0 health_down=0 health_logs='' health_up=0 health_reason=''
    [ "$health_end" -gt "$DEADLINE" ] && health_end=$DEADLINE
    while :; do
        log_ids
        if [ "$logs_now" != "$health_logs" ]; then
            health_logs=$logs_now
            new_text "$AGENT/logs/agent0.log.0" "$AGENT/logs/agent0.log.1" \
                "$agent_inode" "$agent_size" "$agent_id" "$agent_rotated_id" \
                >"$scratch_agent" 2>/dev/null
            new_text "$AGENT/logs/wrapper.log" "$AGENT/logs/wrapper.log.1" \
                "$wrapper_inode" "$wrapper_size" "$wrapper_id" "$wrapper_rotated_id" \
                >"$scratch_wrapper" 2>/dev/null
            health_seen=$(seen_lines)
            failure_of "$health_seen"
            [ -n "$health_reason" ] && break
            health_up=0
            if started "$health_seen" && logged_in "$health_user" "$health_seen"; then
                health_up=1
            fi
        fi
        if [ "$health_up" = 1 ] && running; then
            health_decided '' "$health_user"
            journal health ok
            return 0
        fi
        if [ "$health_ticks" -ge "$fast_ticks" ] ||
            [ $(((health_ticks + 1) % ticks_per_check)) -eq 0 ]; then
            if running; then
                health_down=0
            else
                health_down=$((health_down + 1))
                if [ "$health_down" -ge 2 ]; then
                    health_reason=not-running
                    break
                fi
            fi
        fi
        if [ "$health_forward" = 1 ] && [ "$interrupted" = 1 ]; then
            health_reason=interrupted
            break
        fi
        clock
        if [ "$now" -ge "$DEADLINE" ]; then
            health_reason=deadline
            break
        fi
        if [ "$now" -ge "$health_end" ]; then
            health_reason=timeout
            break
        fi
        if [ "$health_ticks" -lt "$fast_ticks" ]; then
            sleep "$tick"
        else
            sleep "$slow_tick"
        fi
        health_ticks=$((health_ticks + 1))
    done
    health_decided "$health_reason" "$health_user"
    journal health fail "$health_reason"
    return 1
}

# start_and_check USER END FORWARD: start, then health. Sets health_reason.
# A recovery start (FORWARD=0) gets at least 5 s, even at the deadline.
start_and_check() {
    mark_logs
    start_end=$2
    [ "$start_end" -gt "$DEADLINE" ] && start_end=$DEADLINE
    clock
    start_limit=$((start_end - now))
    if [ "$3" = 0 ] && [ "$start_limit" -lt 5 ]; then
        start_limit=5
    fi
    if ! start_mid "$start_limit"; then
        health_reason=start
        return 1
    fi
    health "$1" "$2" "$3"
}

