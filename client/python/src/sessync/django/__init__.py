"""Django integration of sessync.

Add ``"sessync.django"`` to ``INSTALLED_APPS``, ``"sessync.django.middleware.SessyncMiddleware"``
to ``MIDDLEWARE`` right after ``AuthenticationMiddleware``, ``"sessync.django.backends.
SessyncBackend"`` to ``AUTHENTICATION_BACKENDS`` (after ``ModelBackend``), include
``sessync.django.urls`` (``path("account/", include("sessync.django.urls"))``), and configure::

    SESSYNC = {
        "ENDPOINTS": ["http://127.0.0.1:7101", "http://127.0.0.1:7102", "http://127.0.0.1:7103"],
        "API_KEY": "demo-app-key-change-me",
        "COOKIE_SECURE": False,   # local http only
    }

Then Django's own ``login()`` creates a sessync session (signal handlers, ``signals.py``) and
sets the token in an HttpOnly cookie; every request validates and touches it and an ended
session logs the user out (``middleware.py``); ``logout()`` ends it. ``views.py`` has "where am
I logged in" with end-one, end-all-others and log-out-everywhere, the page of a login refused at
the limit (end one, then retry) and the page of a blocked login (continue here); the template
tag ``{% load sessync %}{% sessync_idle_warning %}`` logs the user out in the browser when the
idle time runs out. Every setting is described in ``conf.py``.
"""
