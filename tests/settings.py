"""The suite runs dashboard.settings as production does (DEBUG off) with a throwaway key."""

import os

os.environ.setdefault("SECRET_KEY", "runboard-tests-only-not-a-secret")

from dashboard.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The SQLite test database is a file, not shared memory: the rerun worker the browser tests
# start is another thread with its own connection, as it is another process in production.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import tempfile

    DATABASES["default"]["TEST"]["NAME"] = os.path.join(  # noqa: F405
        tempfile.gettempdir(), f"runboard-tests-{os.getpid()}.sqlite3"
    )
