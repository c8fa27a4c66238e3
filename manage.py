#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands that only ever run on a developer's machine start in development mode unless told
# otherwise; everything else (migrate, db_worker, gunicorn's wsgi) follows DEBUG as set.
DEVELOPMENT_COMMANDS = {"runserver", "demo", "emulate"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    if len(sys.argv) > 1 and sys.argv[1] in DEVELOPMENT_COMMANDS:
        os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
