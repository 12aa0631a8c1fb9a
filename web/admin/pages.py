"""The admin pages' HTML: plain forms, no script (Jinja autoescapes every value)."""
from __future__ import annotations

from flask import render_template_string

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley admin: {{ title }}</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:4rem auto}label,input,button{display:block;margin:.4rem 0}
input{width:100%;padding:.3rem}.error{color:#a00}</style></head>
<body><h1>{{ title }}</h1>{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}BODY</body></html>"""

_LOGIN = """<form method="post" action="{{ url_for('admin.login') }}">
<input type="hidden" name="next" value="{{ next }}">
<label for="username">Username or email</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>"""

_HOME = """<p>Signed in as <strong>{{ username }}</strong>.</p>
<ul><li><a href="{{ url_for('rq_dashboard.queues_overview') }}">Job queues (rq-dashboard)</a></li></ul>
<form method="post" action="{{ url_for('admin.logout') }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}"><button type="submit">Sign out</button></form>"""

_REFUSED = """<p>{{ reason }}</p><p><a href="{{ url_for('admin.login_form') }}">Sign in as an administrator</a></p>"""


def _page(body: str, title: str, **values: object) -> str:
    return render_template_string(_LAYOUT.replace("BODY", body), title=title, **values)


def login_page(next_url: str, error: str | None = None) -> str:
    return _page(_LOGIN, "Sign in", next=next_url, error=error)


def home_page(username: str, csrf_token: str) -> str:
    return _page(_HOME, "Administration", username=username, csrf_token=csrf_token)


def refused_page(reason: str) -> str:
    return _page(_REFUSED, "Access refused", reason=reason)
