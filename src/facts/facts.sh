# midfleet facts: one read of a MID host. POSIX sh; the assignments above
# (MID_HOME, CONFIG, SERVICE_KIND, SERVICE_UNIT, STATUS_COMMAND, MAX_CONFIG)
# are written by midfleet, shell-quoted. Reads only; writes only in its own
# temporary folder, which it removes. Runs nothing from the MID's folders
# (the MID's user may write them; this may run as root): the service state
# of a mid.sh MID comes from its pid file, not from `mid.sh status`.
set -u
umask 077
LC_ALL=C
export LC_ALL
# One private folder (mode 0700) for every file this read keeps a while:
# the blob being sent, and config.xml's and wrapper-override.conf's
# bytes for the backups' comparison below.
scratch_dir=$(mktemp -d "${TMPDIR:-/tmp}/midfleet-facts.XXXXXX") || exit 70
scratch=$scratch_dir/blob
config_copy=
wrapper_copy=
copy=
trap 'rm -rf -- "$scratch_dir"' EXIT
trap 'rm -rf -- "$scratch_dir"; exit 1' HUP INT TERM PIPE

printf 'midfleet-facts 1\n'
printf 'uid %s\n' "$(id -u)"

# blob NAME FILE: the file's bytes, length-prefixed, read once, at most
# MAX_CONFIG + 1 of them (a file the MID's user swaps for a huge one after
# its size was checked is cut there, and then refused for its size); with
# GNU dd never through a link and never waiting on a FIFO.
have_gnu_dd=0
dd if=/dev/null iflag=nofollow,nonblock,count_bytes count=1 status=none 2>/dev/null && have_gnu_dd=1
read_file() {
    if [ "$have_gnu_dd" = 1 ]; then
        dd if="$1" iflag=nofollow,nonblock,count_bytes count=$((MAX_CONFIG + 1)) bs=65536 \
            status=none 2>/dev/null
    else
        [ -f "$1" ] && [ ! -L "$1" ] && head -c $((MAX_CONFIG + 1)) -- "$1"
    fi
}
blob() {
    if read_file "$2" > "$scratch"; then
        size=$(wc -c < "$scratch")
        printf 'blob %s %s\n' "$1" "$((size + 0))"
        cat -- "$scratch"
        printf '\n'
    fi
}

# read_config NAME FILE: config.xml or wrapper-override.conf (NAME config
# or wrapper), whose folder the caller has checked: NAME-symlink TARGET,
# NAME-missing, NAME-not-a-file, NAME-unreadable, NAME-too-large SIZE, or
# its owner and mode (NAME-stat) and contents (blob NAME), whose bytes
# stay in $copy (for the restore check below); $copy is empty otherwise.
read_config() {
    copy=
    if [ -L "$2" ]; then
        printf '%s-symlink %s\n' "$1" "$(readlink -- "$2" | tr '\n' ' ')"
    elif [ ! -e "$2" ]; then
        printf '%s-missing\n' "$1"
    elif [ ! -f "$2" ]; then
        printf '%s-not-a-file\n' "$1"
    elif [ ! -r "$2" ]; then
        printf '%s-unreadable\n' "$1"
    else
        # One stat: the size, then the owner, group, mode and their names.
        if stat_all=$(stat -c '%s %u %g %a %U %G' -- "$2" 2>/dev/null); then
            size=${stat_all%% *}
            stat_line=${stat_all#* }
        else
            size=$(wc -c < "$2")
            stat_line=$(ls -lnd -- "$2" | awk '{ print $3, $4 }')
        fi
        size=$((size + 0))
        if [ "$size" -gt "$MAX_CONFIG" ]; then
            printf '%s-too-large %s\n' "$1" "$size"
            return
        fi
        kept=$scratch_dir/$1
        read_file "$2" > "$kept"
        size=$(wc -c < "$kept")
        size=$((size + 0))
        if [ "$size" -gt "$MAX_CONFIG" ]; then
            # Grown (or swapped) since its size was read: cut, refused.
            printf '%s-too-large %s\n' "$1" "$size"
        elif [ -z "$stat_line" ]; then
            # Gone (or swapped) since it was checked.
            printf '%s-unreadable\n' "$1"
        else
            printf '%s-stat %s\n' "$1" "$stat_line"
            printf 'blob %s %s\n' "$1" "$size"
            cat -- "$kept"
            printf '\n'
            copy=$kept
        fi
    fi
}

# mid_home's real path (links above it are the operator's), once.
home_real=$(cd -P -- "$MID_HOME" 2>/dev/null && pwd -P)

# config.xml's folder, when inside mid_home, is reached through no link
# below mid_home (the transaction refuses such a folder too).
config_dir=${CONFIG%/*}
linked_folder=
case $config_dir in
    "$MID_HOME"/*)
        folder_real=$(cd -P -- "$config_dir" 2>/dev/null && pwd -P)
        if [ -n "$folder_real" ] && [ "$folder_real" != "${home_real%/}/${config_dir#"$MID_HOME"/}" ]; then
            linked_folder=$folder_real
        fi ;;
esac
if [ -n "$linked_folder" ]; then
    printf 'config-symlink %s\n' "$(printf '%s/%s' "$linked_folder" "${CONFIG##*/}" | tr '\n' ' ')"
else
    read_config config "$CONFIG"
    config_copy=$copy
fi

# conf/wrapper-override.conf beside config.xml (the wrapper's properties:
# heap, JVM arguments), read with config.xml's care: conf/ reached through
# no link, the file a regular one and no link, at most MAX_CONFIG bytes.
wrapper_file=$config_dir/conf/wrapper-override.conf
wrapper_copy=
if [ -z "$linked_folder" ] && [ -d "$config_dir/conf" ] && [ ! -L "$config_dir/conf" ]; then
    wrapper_real=$(cd -P -- "$config_dir/conf" 2>/dev/null && pwd -P)
    config_real=$(cd -P -- "$config_dir" 2>/dev/null && pwd -P)
    if [ "$wrapper_real" != "${config_real%/}/conf" ]; then
        printf 'wrapper-symlink %s\n' "$(printf '%s' "$wrapper_real" | tr '\n' ' ')"
    else
        read_config wrapper "$wrapper_file"
        wrapper_copy=$copy
    fi
elif [ -L "$config_dir/conf" ]; then
    printf 'wrapper-symlink %s\n' "$(readlink -- "$config_dir/conf" | tr '\n' ' ')"
else
    printf 'wrapper-missing\n'
fi

# The service: what the inventory says, else (mid_service: auto) the
# systemd unit named by APP_NAME in mid.shconf_override or mid.shconf when
# systemd knows it and the unit itself (root's) runs this MID's agent
# folder — APP_NAME is in a file the MID's user may write, and must never
# pick another service for root to stop — else agent/bin/mid.sh.
kind=$SERVICE_KIND
unit=$SERVICE_UNIT
agent=$MID_HOME/agent
if [ "$kind" = auto ]; then
    kind=mid.sh
    app=
    for shconf in "$agent/bin/mid.shconf_override" "$agent/bin/mid.shconf"; do
        if [ -z "$app" ] && [ -f "$shconf" ] && [ ! -L "$shconf" ]; then
            # The last APP_NAME line's value (sed keeps the last match
            # and prints it at the end; an empty line when there is none).
            app=$(read_file "$shconf" |
                sed -n -e 's/^[[:space:]]*APP_NAME[[:space:]]*=[[:space:]]*["'\'']*\([A-Za-z0-9_.@:-]*\).*/\1/' \
                    -e 't match' -e '$!d' -e 'x' -e 'p' -e 'q' -e ':match' -e 'h' -e '$p')
        fi
    done
    if [ -n "$app" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 \
        && systemctl cat -- "$app.service" >/dev/null 2>&1; then
        # The program the unit starts or stops (`path=`) is in this
        # agent/, or the unit works in it: not a unit that merely names
        # a file there (a log shipper's `tail -F …/agent0.log.0`), and
        # `/srv/opt/…` is not `/opt/…`.
        unit_text="
$(systemctl show -p ExecStart -p ExecStop -p WorkingDirectory -- "$app.service" 2>/dev/null)
"
        for agent_path in "$MID_HOME/agent" "${home_real:-$MID_HOME}/agent"; do
            case $unit_text in
                *"{ path=$agent_path/"* | *"WorkingDirectory=$agent_path
"* | *"WorkingDirectory=$agent_path/"*)
                    kind=systemd
                    unit=$app ;;
            esac
        done
    fi
fi
case $kind in
    systemd)
        if systemctl is-active --quiet -- "$unit" 2>/dev/null; then state=running
        elif systemctl cat -- "$unit" >/dev/null 2>&1; then state=stopped
        else state=missing; fi ;;
    mid.sh)
        # The wrapper's pid file (agent/work/APP_NAME.pid): running when
        # it names a live process that is not a zombie.
        if [ ! -f "$agent/bin/mid.sh" ]; then state=missing
        else
            state=stopped
            pid=
            pid_file=$agent/work/${app:-mid}.pid
            [ -f "$pid_file" ] || pid_file=$agent/work/mid.pid
            [ -f "$pid_file" ] && pid=$(read_file "$pid_file" | head -c 32 | tr -cd '0-9')
            if [ -n "$pid" ] && [ "$pid" -gt 1 ] 2>/dev/null && [ -d "/proc/$pid" ]; then
                proc_state=
                read -r proc_stat </proc/"$pid"/stat 2>/dev/null && proc_state=${proc_stat##*) } && proc_state=${proc_state%% *}
                [ "$proc_state" != Z ] && state=running
            fi
        fi ;;
    commands)
        if sh -c "$STATUS_COMMAND" >/dev/null 2>&1 </dev/null; then state=running; else state=stopped; fi ;;
esac
printf 'service %s %s %s\n' "$kind" "${unit:--}" "$state"

# The kind of MID: markers in config.xml's folder (the agent folder) —
# names only: no link followed, nothing opened or run. `.container` and
# `.initialized` are the container recipe's; a non-empty
# work/upgrade_temp/ is the MID's upgrader at work.
if [ -z "$linked_folder" ] && [ -d "$config_dir" ] && [ ! -L "$config_dir" ]; then
    for marker in container initialized; do
        if [ -e "$config_dir/.$marker" ] || [ -L "$config_dir/.$marker" ]; then
            printf 'marker %s\n' "$marker"
        fi
    done
    upgrade_temp=$config_dir/work/upgrade_temp
    if [ -d "$config_dir/work" ] && [ ! -L "$config_dir/work" ] && [ -d "$upgrade_temp" ] \
        && [ ! -L "$upgrade_temp" ] && [ -n "$(ls -A -- "$upgrade_temp" 2>/dev/null | head -c 1)" ]; then
        printf 'marker upgrade-temp\n'
    fi
fi

# midfleet's own state on the host: its record, the lock and journal of a
# run, and the backups (newest last), with the newest one's config.xml for
# `midfleet rollback`.
printf 'time %s\n' "$(date +%s)"
M="$MID_HOME/.midfleet"
# .midfleet is read only when it is this user's own folder where mid_home
# says (not a link the MID's user planted, not a folder of its own).
trusted=0
if [ -d "$M" ] && [ ! -L "$M" ] && [ -O "$M" ]; then
    [ "$(cd -P -- "$M" 2>/dev/null && pwd -P)" = "${home_real%/}/.midfleet" ] && trusted=1
fi
# Where a change writes: .midfleet (made in mid_home when missing) and
# config.xml's folder. `test -w` is access(2) in dash and bash: it also
# says no on a read-only file system, even to root (busybox answers from
# the mode bits; the transaction probes with a real file before it stops
# the MID, so such a host is still refused before anything changes).
if [ -d "$M" ]; then
    [ -w "$M" ] || printf 'not-writable midfleet-folder\n'
else
    [ -w "$MID_HOME" ] || printf 'not-writable midfleet-folder\n'
fi
[ -w "${config_dir:-/}" ] || printf 'not-writable config-folder\n'
if [ "$trusted" = 0 ]; then
    M=/nonexistent/midfleet-untrusted
fi
[ -f "$M/state.json" ] && blob state "$M/state.json"
[ -f "$M/config.after" ] && blob after "$M/config.after"
[ -f "$M/lock" ] && blob lock "$M/lock"
[ -f "$M/journal" ] && blob journal "$M/journal"
# Test failpoints left on the host (transaction.sh `failpoint`): every run
# would pause there.
for failpoint in backup write rename start; do
    [ -f "$M/failpoints/$failpoint" ] && printf 'failpoint %s\n' "$failpoint"
done
if [ -d "$M/backups" ]; then
    # `rollback` restores the newest backup that differs from config.xml,
    # or whose wrapper-override.conf differs from the current one
    # (a run that rolled back leaves a backup equal to the current files):
    # compared newest first, and only until one differs. (Names are run
    # ids; another name can never be restored, and is not compared.)
    chosen=
    newest_first=
    for backup in "$M/backups"/*; do
        [ -f "$backup/config.xml" ] || continue
        printf 'backup %s\n' "${backup##*/}"
        case ${backup##*/} in *[!A-Za-z0-9._-]* | .*) ;; *) newest_first="${backup##*/} $newest_first" ;; esac
    done
    for backup in $newest_first; do
        if [ -z "$config_copy" ] || ! cmp -s -- "$M/backups/$backup/config.xml" "$config_copy"; then
            chosen=$backup
            break
        fi
        if [ -f "$M/backups/$backup/wrapper-override.conf" ] &&
            { [ -z "$wrapper_copy" ] || ! cmp -s -- "$M/backups/$backup/wrapper-override.conf" "$wrapper_copy"; }; then
            chosen=$backup
            break
        fi
    done
    if [ -n "$chosen" ]; then
        printf 'backup-chosen %s\n' "$chosen"
        blob backup-config "$M/backups/$chosen/config.xml"
        [ -f "$M/backups/$chosen/wrapper-override.conf" ] &&
            blob backup-wrapper "$M/backups/$chosen/wrapper-override.conf"
    fi
fi
printf 'end\n'
