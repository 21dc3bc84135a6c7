#!/usr/bin/env python
"""manage.py of the minimal project that hosts django-helpdesk for the peer benchmark."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
