"""Runs several `ansible … --list-hosts` command lines in one Python
process, through Ansible's own CLI class (AdHocCLI: the code the `ansible`
command runs), so that Ansible is imported once instead of once per line
(0.4 s each on a quiet machine; the parity suite asks ~300 patterns).

stdin: a JSON list of argv lists (argv[0] is `ansible`). stdout: a JSON
list, one entry per argv, each {"status": int, "stdout": str, "error": str}.
"""

import contextlib
import io
import json
import sys
import traceback

from ansible.cli.adhoc import AdHocCLI
from ansible.parsing.vault import VaultSecretsContext
from ansible.utils.context_objects import GlobalCLIArgs



def run(argv):
    out = io.StringIO()
    err = io.StringIO()
    status = 0
    # The process-wide state a CLI run sets up once (the parsed arguments,
    # a singleton; the vault secrets, refused twice): each command line
    # starts as a fresh `ansible` would. The suite checks the answers
    # against separate `ansible` processes too.
    VaultSecretsContext._current = None
    GlobalCLIArgs._Singleton__instance = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if argv[0] != "ansible":
                raise ValueError("only `ansible` command lines: %r" % argv[0])
            cli = AdHocCLI(argv)
            cli.parse()
            status = cli.run() or 0
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        except Exception as error:  # the CLI's own executor prints these
            status = 1
            err.write("ERROR: %s\n" % error)
            err.write(traceback.format_exc(limit=2))
    return {"status": status, "stdout": out.getvalue(), "error": err.getvalue()}


def main():
    real_stdout = sys.stdout
    results = [run(argv) for argv in json.load(sys.stdin)]
    real_stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
