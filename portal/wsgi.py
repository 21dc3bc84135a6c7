"""The web server's entry point (gunicorn portal.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# A web request's statement ends after 30 s on PostgreSQL (portal/settings.py): before settings load.
os.environ.setdefault("DB_STATEMENT_TIMEOUT", "30s")
application = get_wsgi_application()
