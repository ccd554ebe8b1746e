"""Views of the test project: a password login (Django's own ``login()``, which sessync's
signal turns into a sessync session) and a page behind ``login_required``."""

from __future__ import annotations

from django.contrib.auth import authenticate, login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render


def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
        )
        if user is not None:
            login(request, user)  # LimitReached, if any, is rendered by the middleware
            return HttpResponseRedirect(request.POST.get("next") or "/")
        return HttpResponse("bad credentials", status=401)
    reason = request.session.get("sessync_end_reason", "")
    return HttpResponse(f"login page {reason}")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/home.html", {"user": request.user})
