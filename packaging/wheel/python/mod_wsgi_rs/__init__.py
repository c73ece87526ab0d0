"""mod_wsgi-rs: a host for Python WSGI applications.

The wheel installs the ``wsgi-standalone`` command (the standalone server,
and ``module-config``, ``module-location`` and ``install-module`` for
Apache httpd) and, in this package, the Apache module, as mod_wsgi's own
package ships its module. The module and the command embed the Python they
were built with (``PYTHON_VERSION``); they run only with a Python home or
virtual environment of that version.
"""

import os
import sys

from ._built import PYTHON_VERSION, MODULE_NAME

__all__ = ["PYTHON_VERSION", "where", "executable", "check_python"]


def where():
    """The absolute path of the Apache module inside this package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "server", MODULE_NAME)


def executable():
    """The ``wsgi-standalone`` command installed with this package."""
    import shutil
    import sysconfig

    for scripts in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(scripts, "wsgi-standalone")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("wsgi-standalone")
    if found is None:
        raise FileNotFoundError("the wsgi-standalone command of mod_wsgi_rs is not installed")
    return found


def check_python():
    """None if this Python is the version the package was built for, else
    the message that says which versions differ."""
    running = tuple(sys.version_info[:2])
    if running == tuple(PYTHON_VERSION):
        return None
    built = "%d.%d" % tuple(PYTHON_VERSION)
    found = "%d.%d" % running
    return (
        "mod_wsgi_rs was built for Python %s, but %s is Python %s: "
        "install the wheel built for Python %s" % (built, sys.prefix, found, found)
    )
