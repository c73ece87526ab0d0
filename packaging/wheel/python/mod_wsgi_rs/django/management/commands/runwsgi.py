"""``manage.py runwsgi [OPTIONS]``: serve this project with wsgi-standalone.

The project's ``WSGI_APPLICATION`` (``package.module.callable``) is served
as the target ``package.module:callable``; ``STATIC_URL`` is mapped to
``STATIC_ROOT`` (``collectstatic`` fills it) when both are set; the
project's directory (``BASE_DIR``, else that of ``manage.py``) is the
working directory and comes first on the Python path. Django's own
options (``--settings``, ``--pythonpath``, ...) are Django's; every other
option is ``wsgi-standalone start-server``'s, passed through as given
(``manage.py runwsgi --help`` lists them).
"""

import os
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from mod_wsgi_rs import check_python, executable


def target_of(wsgi_application):
    """``package.module.callable`` as a start-server target."""
    module, dot, name = (wsgi_application or "").rpartition(".")
    if not dot or not module or not name:
        raise CommandError(
            "WSGI_APPLICATION is %r; runwsgi needs 'package.module.callable'" % (wsgi_application,)
        )
    return "%s:%s" % (module, name)


def static_alias():
    """``--url-alias STATIC_URL STATIC_ROOT``, when the project has both."""
    url = getattr(settings, "STATIC_URL", None)
    root = getattr(settings, "STATIC_ROOT", None)
    if not url or not root or "://" in url:
        return []
    if not url.startswith("/"):
        url = "/" + url
    return ["--url-alias", url.rstrip("/") or "/", os.path.abspath(str(root))]


def given(arguments, option):
    return any(a == option or a.startswith(option + "=") for a in arguments)


# Django's own options, which manage.py has applied already: not
# start-server's (with whether each takes a value).
DJANGO_OPTIONS = {
    "--settings": True,
    "--pythonpath": True,
    "--verbosity": True,
    "-v": True,
    "--traceback": False,
    "--no-color": False,
    "--force-color": False,
}


def without_django_options(arguments):
    """The arguments less Django's own options."""
    kept = []
    skip = False
    for argument in arguments:
        if skip:
            skip = False
            continue
        name = argument.split("=", 1)[0]
        if name in DJANGO_OPTIONS:
            skip = DJANGO_OPTIONS[name] and "=" not in argument
            continue
        kept.append(argument)
    return kept


def project_directory(argv0):
    """Where the project is: BASE_DIR if the settings name it, else the
    directory of manage.py, else the current directory (django-admin)."""
    base = getattr(settings, "BASE_DIR", None)
    if base:
        return os.path.abspath(str(base))
    if os.path.basename(argv0) == "manage.py":
        return os.path.dirname(os.path.abspath(argv0))
    return os.getcwd()


class Command(BaseCommand):
    help = (
        "Serve this project's WSGI_APPLICATION with wsgi-standalone start-server "
        "(STATIC_URL mapped to STATIC_ROOT); every start-server option passes through."
    )

    def run_from_argv(self, argv):
        # The options are start-server's, not Django's: no parser of ours
        # stands between them (manage.py has set the settings up already).
        arguments = without_django_options(argv[2:])
        if any(a in ("-h", "--help") for a in arguments):
            os.execv(executable(), [executable(), "start-server", "--help"])
        problem = check_python()
        if problem is not None:
            raise CommandError(problem)
        try:
            target = target_of(settings.WSGI_APPLICATION)
        except ImproperlyConfigured as error:
            raise CommandError(str(error))
        command = [executable(), "start-server", target]
        if not given(arguments, "--url-alias"):
            command += static_alias()
        if not given(arguments, "--working-directory"):
            command += ["--working-directory", project_directory(argv[0])]
        command += arguments
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(command[0], command)

    def handle(self, *args, **options):
        raise CommandError("runwsgi runs from manage.py: manage.py runwsgi [OPTIONS]")
