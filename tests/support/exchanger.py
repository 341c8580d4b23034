"""Exchanges two names in a loop (renameat2 RENAME_EXCHANGE), as a MID's
user can in its own folders: a reader that checks a name and then uses
it sometimes gets the other file. Run: exchanger.py A B (until killed)."""

import ctypes
import sys

libc = ctypes.CDLL(None, use_errno=True)
a, b = (s.encode() for s in sys.argv[1:3])
while True:
    libc.renameat2(-100, a, -100, b, 2)
