# ==== part 05-clock.sh: the clock ===========================================
# Owns: `clock`, which sets `now` (seconds): `date` once, then
# /proc/uptime.
# Must not: journal, wait, or start a process per call where /proc/uptime
# is readable (every wait calls it).
# ============================================================================

# clock: sets `now` to the host's clock in seconds. Without a process
# where the shell can read /proc/uptime: `date` once, then the uptime
# since (every wait below looks at the clock, on a host that may be
# starting a JVM); `date` each time elsewhere.
clock_start=$(date +%s)
clock_uptime=
if [ -r /proc/uptime ]; then
    read -r clock_uptime _ </proc/uptime 2>/dev/null
    clock_uptime=${clock_uptime%%.*}
fi
case $clock_uptime in '' | *[!0-9]*) clock_uptime= ;; esac
clock() {
    if [ -n "$clock_uptime" ] && read -r clock_now _ </proc/uptime 2>/dev/null; then
        now=$((clock_start + ${clock_now%%.*} - clock_uptime))
    else
        now=$(date +%s)
    fi
}

