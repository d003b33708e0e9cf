#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "btro.settings")
    if sys.argv[1:2] == ["separate"] and not {"--settings", "--pythonpath"} & {
        a.split("=", 1)[0] for a in sys.argv
    }:
        # One file, no database: the separate command runs without loading the apps.
        from jobs.management.commands.separate import run_without_apps

        run_without_apps(sys.argv)
        sys.exit(0)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
