"""A hostile MID user racing midfleet's files (security issue 14).

Run AS THE MID USER, who owns mid_home and the agent folder, as in a real
install. With inotify it watches `agent/`, `agent/security/` (watched again
whenever the folder is replaced) and, with --home, mid_home itself; every
new entry (IN_CREATE, IN_MOVED_TO) it may swap, it swaps at once for a
symlink to a root-only victim: renamed away (to `.racer-N` in the same
folder: a folder only its owner may move to another parent), then a
symlink in its place — a victim file for a file, the victim folder for a
folder. Were root to write, chown, chmod or copy into the entry by its
path afterwards, it would do so to the victim.

Which entries: only those NOT owned by the MID user — its own links and
what the MID writes as that user are never touched — and never
`config.xml` itself, nor the names the simulated MID gives its own files
(`.config.xml.*.midsim-tmp`, `agent_keystore`, `.agent_keystore.*`): while
midfleet still runs mid.sh as root, those are root's too, and swapping
them would test the MID, not midfleet. So what it swaps is what root
(midfleet) creates in a folder the MID user can write.

--home-limit N: at most N swaps in mid_home (`.midfleet` is made once;
after a swap the test puts the folder back and the rounds go on).

Log (one line per event, appended; the test counts them):
    ready
    swap FOLDER NAME KIND TARGET     swapped
    miss FOLDER NAME REASON          root's entry, gone or unmovable first
    seen FOLDER NAME                 config.xml renamed into place
FOLDER is `agent`, `security` or `home`; KIND `file` or `dir`.
"""

import argparse
import ctypes
import ctypes.util
import os
import select
import signal
import stat
import struct
import sys

IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_IGNORED = 0x00008000
IN_Q_OVERFLOW = 0x00004000
EVENT = struct.Struct("iIII")
MID_OWN = ("agent_keystore",)
MID_OWN_PREFIXES = (".agent_keystore.",)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mid-home", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--victim-file", action="append", required=True)
    parser.add_argument("--victim-dir", required=True)
    parser.add_argument("--home", action="store_true")
    parser.add_argument("--home-limit", type=int, default=1)
    options = parser.parse_args()

    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    inotify = libc.inotify_init1(os.O_CLOEXEC)
    if inotify < 0:
        sys.exit("inotify_init1: " + os.strerror(ctypes.get_errno()))
    log = os.open(options.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    me = os.getuid()
    home = options.mid_home
    folders = {"agent": os.path.join(home, "agent")}
    folders["security"] = os.path.join(folders["agent"], "security")
    if options.home:
        folders["home"] = home
    watches = {}  # wd -> folder label
    labels = {}  # folder label -> wd
    counters = {"stash": 0, "file": 0, "home": 0}

    def note(line):
        os.write(log, (line + "\n").encode())

    def watch(label):
        wd = libc.inotify_add_watch(inotify, os.fsencode(folders[label]), IN_CREATE | IN_MOVED_TO)
        if wd < 0:
            return
        old = labels.get(label)
        if old is not None and old != wd:
            # The folder was replaced: the old watch follows the old inode.
            watches.pop(old, None)
        watches[wd] = label
        labels[label] = wd

    def swap(label, name):
        folder = folders[label]
        path = os.path.join(folder, name)
        if name == "config.xml":
            note("seen %s %s" % (label, name))
            return
        if name.startswith(".racer-") or name in MID_OWN or name.startswith(MID_OWN_PREFIXES):
            return
        if name.startswith(".config.xml.") and name.endswith(".midsim-tmp"):
            return
        try:
            found = os.lstat(path)
        except OSError as error:
            note("miss %s %s gone-before-lstat:%s" % (label, name, error.strerror.replace(" ", "-")))
            return
        if found.st_uid == me:
            return
        if label == "home" and counters["home"] >= options.home_limit:
            return
        is_dir = stat.S_ISDIR(found.st_mode)
        if is_dir:
            target = options.victim_dir
        else:
            target = options.victim_file[counters["file"] % len(options.victim_file)]
            counters["file"] += 1
        counters["stash"] += 1
        stash = os.path.join(folder, ".racer-%d-%d" % (os.getpid(), counters["stash"]))
        try:
            os.rename(path, stash)
        except OSError as error:
            note("miss %s %s rename:%s" % (label, name, error.strerror.replace(" ", "-")))
            return
        try:
            os.symlink(target, path)
        except OSError as error:
            note("miss %s %s symlink:%s" % (label, name, error.strerror.replace(" ", "-")))
            return
        if label == "home":
            counters["home"] += 1
        note("swap %s %s %s %s" % (label, name, "dir" if is_dir else "file", target))
        if label == "agent" and name == "security":
            watch("security")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for label in folders:
        watch(label)
    if "agent" not in labels:
        sys.exit("cannot watch " + folders["agent"])
    note("ready")
    while True:
        readable, _, _ = select.select([inotify], [], [], 0.05)
        if not readable:
            # The keystore folder may have been replaced or made again.
            watch("security")
            continue
        data = os.read(inotify, 65536)
        offset = 0
        while offset + EVENT.size <= len(data):
            wd, mask, _cookie, length = EVENT.unpack_from(data, offset)
            raw = data[offset + EVENT.size : offset + EVENT.size + length]
            offset += EVENT.size + length
            name = os.fsdecode(raw.rstrip(b"\0"))
            if mask & IN_Q_OVERFLOW:
                note("miss - - queue-overflow")
                continue
            if mask & IN_IGNORED:
                label = watches.pop(wd, None)
                if label is not None and labels.get(label) == wd:
                    del labels[label]
                continue
            label = watches.get(wd)
            if label is None or not name:
                continue
            if mask & (IN_CREATE | IN_MOVED_TO):
                swap(label, name)
                if label == "agent" and name == "security":
                    watch("security")


if __name__ == "__main__":
    main()
