"""The Flask app of the tests (like ``examples/flask_app``, JSON answers): login, a page behind
``login_required``, logout, log out everywhere, end other sessions, and the limit and blocked
flows."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from sessync import Client, LimitReached
from sessync.flask import Sessync, current_session, current_validation, login_required


def session_json(s: Any) -> Dict[str, Any]:
    return {"session_id": s.session_id, "state": s.state.value, "device": s.device.name}


def create_app(endpoints: list[str], api_key: str, client: Optional[Client] = None) -> Flask:
    app = Flask(__name__)
    app.secret_key = "test-only"
    app.config.update(
        SESSYNC_ENDPOINTS=endpoints,
        SESSYNC_API_KEY=api_key,
        SESSYNC_COOKIE_SECURE=False,
        SESSYNC_TIMEOUT=15.0,
        SESSYNC_BLOCKED_VIEW="blocked",
    )
    ext = Sessync(app, client=client)

    @app.post("/login")
    def login() -> ResponseReturnValue:
        username = request.form["username"]
        try:
            created = ext.login_user(username, device_name=request.form.get("device"))
        except LimitReached as e:
            body = {
                "error": "limit_reached",
                "sessions": [session_json(s) for s in e.active_sessions],
            }
            return jsonify(body), 409
        return jsonify(session_json(created.session)), 201

    @app.post("/limit/end")
    def limit_end() -> ResponseReturnValue:
        # The app vouches for the user (it just checked the password), ends the chosen
        # session, and retries the login.
        username = request.form["username"]
        ext.end_session(request.form["session_id"], user_id=username)
        created = ext.login_user(username)
        return jsonify(session_json(created.session)), 201

    @app.get("/me")
    @login_required
    def me() -> ResponseReturnValue:
        assert current_session and current_validation
        return jsonify(
            user=current_session.user_id,
            session_id=current_session.session_id,
            seconds_until_idle_end=current_validation.seconds_until_idle_end,
        )

    @app.get("/blocked")
    def blocked() -> Tuple[Any, int]:
        return jsonify(blocked=True), 403

    @app.post("/continue")
    def continue_here() -> ResponseReturnValue:
        result = ext.end_other_sessions()
        return jsonify(ended=result.ended if result else None)

    @app.get("/sessions")
    @login_required
    def sessions() -> ResponseReturnValue:
        return jsonify([session_json(s) for s in ext.sessions()])

    @app.post("/logout")
    def logout() -> ResponseReturnValue:
        ext.logout_user()
        return jsonify(ok=True)

    @app.post("/logout-everywhere")
    @login_required
    def logout_everywhere() -> ResponseReturnValue:
        result = ext.logout_everywhere()
        return jsonify(ended=result.ended if result else 0)

    @app.post("/end-others")
    @login_required
    def end_others() -> ResponseReturnValue:
        result = ext.end_other_sessions()
        return jsonify(ended=result.ended if result else 0)

    return app
