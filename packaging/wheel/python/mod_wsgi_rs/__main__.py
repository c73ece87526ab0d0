"""``mod_wsgi_rs ARGS`` and ``python -m mod_wsgi_rs ARGS``: run
``wsgi-standalone ARGS`` (the same command, found next to this Python)."""

import os
import sys

from . import check_python, executable


def main():
    problem = check_python()
    if problem is not None:
        sys.stderr.write("mod_wsgi_rs: %s\n" % problem)
        return 1
    try:
        program = executable()
    except FileNotFoundError as error:
        sys.stderr.write("mod_wsgi_rs: %s\n" % error)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(program, [program] + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
