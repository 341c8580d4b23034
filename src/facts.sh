# midfleet facts: one read of a MID host. POSIX sh; the assignments above
# (MID_HOME, CONFIG, SERVICE_KIND, SERVICE_UNIT, STATUS_COMMAND, MAX_CONFIG)
# are written by midfleet, shell-quoted. Reads only; writes only its own
# temporary file, which it removes.
set -u
umask 077
LC_ALL=C
export LC_ALL
scratch=$(mktemp "${TMPDIR:-/tmp}/midfleet-facts.XXXXXX") || exit 70
trap 'rm -f "$scratch"' EXIT
trap 'rm -f "$scratch"; exit 1' HUP INT TERM PIPE

printf 'midfleet-facts 1\n'
printf 'uid %s\n' "$(id -u)"

# blob NAME FILE: the file's bytes, length-prefixed, read once.
blob() {
    if cat -- "$2" > "$scratch" 2>/dev/null; then
        size=$(wc -c < "$scratch")
        printf 'blob %s %s\n' "$1" "$((size + 0))"
        cat -- "$scratch"
        printf '\n'
    fi
}

if [ -L "$CONFIG" ]; then
    printf 'config-symlink %s\n' "$(readlink -- "$CONFIG" | tr '\n' ' ')"
elif [ ! -e "$CONFIG" ]; then
    printf 'config-missing\n'
elif [ ! -f "$CONFIG" ]; then
    printf 'config-not-a-file\n'
elif [ ! -r "$CONFIG" ]; then
    printf 'config-unreadable\n'
else
    size=$(wc -c < "$CONFIG")
    size=$((size + 0))
    if [ "$size" -gt "$MAX_CONFIG" ]; then
        printf 'config-too-large %s\n' "$size"
    else
        stat_line=$(stat -c '%u %g %a %U %G' -- "$CONFIG" 2>/dev/null) || stat_line=$(
            ls -lnd -- "$CONFIG" | awk '{ print $3, $4 }'
        )
        printf 'config-stat %s\n' "$stat_line"
        blob config "$CONFIG"
    fi
fi

# The service: systemd unit named by APP_NAME (mid_service: auto) when
# systemd knows it, else agent/bin/mid.sh; or what the inventory says.
kind=$SERVICE_KIND
unit=$SERVICE_UNIT
if [ "$kind" = auto ]; then
    kind=mid.sh
    app=
    for shconf in "$MID_HOME/agent/bin/mid.shconf_override" "$MID_HOME/agent/bin/mid.shconf"; do
        if [ -z "$app" ] && [ -r "$shconf" ]; then
            app=$(sed -n 's/^[[:space:]]*APP_NAME[[:space:]]*=[[:space:]]*["'\'']*\([A-Za-z0-9_.@:-]*\).*/\1/p' "$shconf" | tail -n 1)
        fi
    done
    if [ -n "$app" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 \
        && systemctl cat -- "$app.service" >/dev/null 2>&1; then
        kind=systemd
        unit=$app
    fi
fi
case $kind in
    systemd)
        if systemctl is-active --quiet -- "$unit" 2>/dev/null; then state=running
        elif systemctl cat -- "$unit" >/dev/null 2>&1; then state=stopped
        else state=missing; fi ;;
    mid.sh)
        if [ ! -x "$MID_HOME/agent/bin/mid.sh" ]; then state=missing
        elif "$MID_HOME/agent/bin/mid.sh" status >/dev/null 2>&1 </dev/null; then state=running
        else state=stopped; fi ;;
    commands)
        if sh -c "$STATUS_COMMAND" >/dev/null 2>&1 </dev/null; then state=running; else state=stopped; fi ;;
esac
printf 'service %s %s %s\n' "$kind" "${unit:--}" "$state"

# midfleet's own state on the host: its record, the lock and journal of a
# run, and the backups (newest last), with the newest one's config.xml for
# `midfleet rollback`.
printf 'time %s\n' "$(date +%s)"
M="$MID_HOME/.midfleet"
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
config_dir=${CONFIG%/*}
[ -w "${config_dir:-/}" ] || printf 'not-writable config-folder\n'
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
    # `rollback` restores the newest backup that differs from config.xml
    # (a run that rolled back leaves a backup equal to the current file):
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
        if ! cmp -s -- "$M/backups/$backup/config.xml" "$CONFIG"; then
            chosen=$backup
            break
        fi
    done
    if [ -n "$chosen" ]; then
        printf 'backup-chosen %s\n' "$chosen"
        blob backup-config "$M/backups/$chosen/config.xml"
    fi
fi
printf 'end\n'
