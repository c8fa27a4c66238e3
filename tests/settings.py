"""The suite runs dashboard.settings as production does (DEBUG off) with a throwaway key."""

import os

os.environ.setdefault("SECRET_KEY", "runboard-tests-only-not-a-secret")

from dashboard.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
