# ==== part 22-swap-proof.sh: reads where only root can swap a file ==========
# Owns: `swap_proof` and `read_held`, for hosts whose dd is not GNU's; the
# facts read (src/facts/facts.sh, sent after this part) uses them too;
# `proof_me`, the login's uid (set before, or asked of `id -u` once).
# Must not: open a file before its folder is held and judged; judge a
# folder other than the one held (a path's text can change under it).
# ============================================================================

# Without GNU dd a read cannot refuse a link or a FIFO in its open
# (iflag=nofollow,nonblock), and a check before the open can be raced: the
# owner of the file's folder swaps in a link to a device (whose open alone
# can act: a watchdog arms) or to a file only root may read, or a FIFO
# (the read waits). So such a read is made only inside the file's folder,
# entered and so held by a subshell (no rename elsewhere changes which
# folder that is), after `swap_proof` said that no user but root and this
# login can rename an entry there.
proof_me=

# swap_proof: whether this shell's own folder is root's or this login's
# and writable by no group or other (an ACL that lets another user write
# shows as group write; a sticky folder such as /tmp is refused too: the
# file's owner may rename it there). One stat.
swap_proof() {
    : "${proof_me:=$(id -u)}"
    proof_line=$(stat -c '%u %a' . 2>/dev/null) || return 1
    case $proof_line in
        "0 "* | "$proof_me "*) ;;
        *) return 1 ;;
    esac
    proof_mode=${proof_line#* }
    case $proof_mode in '' | *[!0-7]*) return 1 ;; esac
    [ $((0$proof_mode & 01022)) = 0 ]
}

# read_held FILE [SKIP [COUNT]]: FILE's bytes from SKIP (0) on, at most
# COUNT (all), read in FILE's folder held as above; nothing, and exit 1,
# when FILE is not a regular file there (a link, a FIFO, gone), and exit 3
# when the folder fails `swap_proof`.
read_held() (
    case $1 in */*) cd -- "${1%/*}/" 2>/dev/null || exit 1 ;; esac
    held_name=${1##*/}
    [ -f "$held_name" ] && [ ! -L "$held_name" ] || exit 1
    swap_proof || exit 3
    if [ "${2:-0}" = 0 ]; then
        if [ -n "${3:-}" ]; then exec head -c "$3" -- "$held_name"; fi
        exec cat -- "$held_name"
    fi
    tail -c +"$(($2 + 1))" -- "$held_name" | head -c "${3:-$((1 << 62))}"
)
