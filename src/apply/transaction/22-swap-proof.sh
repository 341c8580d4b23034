# ==== part 22-swap-proof.sh: who else can swap a file ======================
# Owns: `swap_proof`, which the facts read (src/facts/facts.sh, sent after
# this part) uses too; `proof_me`, the login's uid (set before, or asked
# of `id -u` once).
# Must not: open, read or change anything but the folders' metadata (one
# `stat`); follow a name's folders past a held one.
# ============================================================================

# swap_proof FILE: whether no user but root and this login can swap FILE
# for a link or a FIFO. Without GNU dd a read cannot refuse them in its
# open, and a check before the open can be raced (a link to a device,
# whose open alone can act: a watchdog arms), so a file is read only
# where this holds: the transaction asks it before anything changes
# (`safe_reads_or_conclude`) and again at each read, the facts read at
# each read. FILE's folder and every folder above it (none above a held
# one: /proc/self/fd/N, or this shell's own folder for a name without a
# slash) are root's or this login's and writable by no group or other (an
# ACL that lets another user write shows as group write), but for a
# sticky folder above (/tmp), where no one else may rename the folder
# below, which is root's or this login's. One stat of them all.
proof_me=
swap_proof() {
    : "${proof_me:=$(id -u)}"
    case $1 in */*) proof_folder=${1%/*} ;; *) proof_folder=. ;; esac
    set --
    while :; do
        set -- "$@" "${proof_folder:-/}"
        case $proof_folder in
            /proc/self/fd/* | '' | .) break ;;
            */*) proof_folder=${proof_folder%/*} ;;
            *) proof_folder=. ;;
        esac
    done
    proof_count=$#
    proof_lines=$(stat -L -c '%u %a' -- "$@" 2>/dev/null) || return 1
    proof_seen=0
    while read -r proof_owner proof_mode; do
        case $proof_owner in 0 | "$proof_me") ;; *) return 1 ;; esac
        case $proof_mode in '' | *[!0-7]*) return 1 ;; esac
        [ $((0$proof_mode & 022)) = 0 ] ||
            { [ "$proof_seen" != 0 ] && [ $((0$proof_mode & 01000)) != 0 ]; } || return 1
        proof_seen=$((proof_seen + 1))
    done <<EOF
$proof_lines
EOF
    [ "$proof_seen" = "$proof_count" ]
}
