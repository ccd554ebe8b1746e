"""Settings of the sessync Django example: Django's auth with sessync's app, middleware and
backend, against scripts/cluster.sh's local cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-change-me")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sessync.django",
    "demo",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sessync.django.middleware.SessyncMiddleware",  # right after AuthenticationMiddleware
    "django.contrib.messages.middleware.MessageMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "sessync.django.backends.SessyncBackend",
]

ROOT_URLCONF = "demo.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

TEMPLATES: List[Dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",  # for {% sessync_idle_warning %}
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

SESSYNC: Dict[str, Any] = {
    "ENDPOINTS": os.environ.get(
        "SESSYNC_ENDPOINTS", "http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103"
    ),
    "API_KEY": os.environ.get("SESSYNC_API_KEY", "demo-app-key-change-me"),
    "COOKIE_SECURE": False,  # local http only; keep the default (True) in production
    "ORIGIN": "django-example",
    "IDLE_WARNING": 30,
}
