"""Django settings of the test project (``tests/django_app``): sessync's app, middleware and
backend wired as docs/apps.md says, an in-memory SQLite database, and ``SESSYNC`` pointed at
the test cluster by ``tests/conftest.py`` (the endpoints and key are filled in at run time)."""

from __future__ import annotations

from typing import Any, Dict, List

SECRET_KEY = "test-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sessync.django",
    "tests.django_app",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sessync.django.middleware.SessyncMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "sessync.django.backends.SessyncBackend",
]

ROOT_URLCONF = "tests.django_app.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
LOGIN_URL = "/login/"

TEMPLATES: List[Dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

SESSYNC: Dict[str, Any] = {
    "ENDPOINTS": ["http://127.0.0.1:1"],  # replaced by the test cluster's
    "API_KEY": "",
    "COOKIE_SECURE": False,
    "TIMEOUT": 10.0,
}
