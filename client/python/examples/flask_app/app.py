"""Example Flask app using sessync: log in, see where you are logged in, end sessions, log out
everywhere, handle the limit, and get logged out in the browser when idle.

Run it against scripts/cluster.sh's cluster (see README.md next to this file).
Demo users: alice/alice, bob/bob.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, redirect, render_template_string, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from sessync import LimitReached, Unavailable
from sessync.flask import Sessync, current_session, current_validation, login_required
from sessync.web import idle_script

USERS = {"alice": "alice", "bob": "bob"}  # demo only

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("FLASK_SECRET_KEY", "demo-only-change-me"),
    SESSYNC_ENDPOINTS=os.environ.get(
        "SESSYNC_ENDPOINTS", "http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103"
    ),
    SESSYNC_API_KEY=os.environ.get("SESSYNC_API_KEY", "demo-app-key-change-me"),
    SESSYNC_COOKIE_SECURE=False,  # local http only; keep the default (True) in production
    SESSYNC_LOGIN_VIEW="login",
    SESSYNC_BLOCKED_VIEW="blocked",
    SESSYNC_ORIGIN="flask-example",
)
sessync = Sessync(app)

PAGE = """<!doctype html><title>sessync Flask example</title>
<h1>sessync Flask example</h1>{% for m in messages %}<p><em>{{ m }}</em></p>{% endfor %}
{{ body }}{{ idle }}"""


def page(body: str, *messages: str, **context: Any) -> str:
    v = current_validation
    idle = ""
    if v and v.valid and v.seconds_until_idle_end is not None:
        idle = idle_script(
            v.seconds_until_idle_end,
            status_url=url_for("status"),
            logout_url=url_for("login"),
            warn_before=30,
        )
    inner = render_template_string(body, **context)
    return render_template_string(PAGE, body=Markup(inner), idle=Markup(idle), messages=messages)


@app.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = """<form method=post>user <input name=username> password
      <input name=password type=password> <button>Log in</button></form>"""
    if request.method == "GET":
        return page(form)
    username = request.form.get("username", "")
    if USERS.get(username) != request.form.get("password"):
        return page(form, "Wrong user or password."), 401
    try:
        created = sessync.login_user(username)
    except LimitReached as e:
        session["pending_user"] = username  # this user passed the password check
        body = """<p>You are logged in on too many devices. End one to log in here:</p><ul>
          {% for s in sessions %}<li>{{ s.device.name or "Unknown" }} ({{ s.device.ip }}),
          last seen {{ s.last_seen_at }} <form method=post action="{{ url_for('limit') }}"
          style=display:inline><input type=hidden name=session_id value="{{ s.session_id }}">
          <button>End it and log in here</button></form></li>{% endfor %}</ul>"""
        return page(body, sessions=e.active_sessions), 409
    except Unavailable:
        return page(form, "Sessions are unavailable; try again in a moment."), 503
    if created.session.state.value == "blocked":
        return redirect(url_for("blocked"))
    return redirect(request.args.get("next") or url_for("home"))


@app.post("/limit")
def limit() -> ResponseReturnValue:
    username = session.pop("pending_user", None)
    if username is None:
        return redirect(url_for("login"))
    sessync.end_session(request.form["session_id"], user_id=username)
    sessync.login_user(username)
    return redirect(url_for("home"))


@app.route("/blocked", methods=["GET", "POST"])
def blocked() -> ResponseReturnValue:
    if request.method == "POST":
        if request.form.get("action") == "continue":
            sessync.end_other_sessions()
            return redirect(url_for("home"))
        sessync.logout_user()
        return redirect(url_for("login"))
    return page(
        """<p>You are already logged in elsewhere.</p><form method=post>
        <button name=action value=continue>Continue here (end the other sessions)</button>
        <button name=action value=cancel>Cancel</button></form>"""
    )


@app.get("/")
@login_required
def home() -> ResponseReturnValue:
    body = """<p>Hello {{ s.user_id }} (session {{ s.session_id }}).</p>
      <p><a href="{{ url_for('sessions') }}">Where am I logged in?</a></p>
      <form method=post action="{{ url_for('logout') }}"><button>Log out</button></form>
      <form method=post action="{{ url_for('logout_everywhere') }}">
      <button>Log out everywhere</button></form>"""
    return page(body, s=current_session)


@app.get("/sessions")
@login_required
def sessions() -> ResponseReturnValue:
    body = """<ul>{% for s in sessions %}<li>{{ s.device.name or "Unknown" }}
      ({{ s.device.ip }}) since {{ s.created_at }}, {{ s.state.value }}
      {% if s.session_id == current %}<strong>this device</strong>{% else %}
      <form method=post action="{{ url_for('end', session_id=s.session_id) }}"
      style=display:inline><button>End</button></form>{% endif %}</li>{% endfor %}</ul>
      <form method=post action="{{ url_for('end_others') }}">
      <button>End all other sessions</button></form><a href="/">Home</a>"""
    current = current_session.session_id if current_session else None
    return page(body, sessions=sessync.sessions(), current=current)


@app.post("/sessions/<session_id>/end")
@login_required
def end(session_id: str) -> ResponseReturnValue:
    sessync.end_session(session_id)
    return redirect(url_for("sessions"))


@app.post("/sessions/end-others")
@login_required
def end_others() -> ResponseReturnValue:
    sessync.end_other_sessions()
    return redirect(url_for("sessions"))


@app.post("/logout")
def logout() -> ResponseReturnValue:
    sessync.logout_user()
    return redirect(url_for("login"))


@app.post("/logout-everywhere")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    sessync.logout_everywhere()
    return redirect(url_for("login"))


@app.get("/status")
def status() -> ResponseReturnValue:
    """For the idle script: touches the session only when asked (``?touch=1``)."""
    token = sessync.token()
    if token is None:
        return {"valid": False}
    v = sessync.client.validate(token, touch=request.args.get("touch") == "1")
    return {"valid": v.valid, "seconds_until_idle_end": v.seconds_until_idle_end}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
