#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "diquis.settings")
    from django.core.management import execute_from_command_line

    from diquis.tracing import set_up_tracing

    set_up_tracing()  # the worker's (rqworker) and every command's: only when OTEL_* asks for it

    execute_from_command_line(sys.argv)
