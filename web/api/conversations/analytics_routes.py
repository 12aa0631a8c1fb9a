"""Analytics (002 endpoints 9 and 10) and message search (11)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import g

from web.api.conversations import bp
from web.api.conversations.answers import Dashboard, Envelope, GlobalAnalytics, SearchPage
from web.api.conversations.envelope import found, ok
from web.api.conversations.schemas import SearchQuery
from web.api.conversations.serializers import dashboard_view, global_view, search_result_view
from web.api.described import responds
from web.api.parsing import parse_query
from web.auth.tokens import login_required
from web.db import get_db
from web.services import analytics, search


@bp.get("/analytics/dashboard")
@responds(200, Envelope[Dashboard])
@login_required
def dashboard():
    """The user's totals, mean AI reply time, busiest agent and the last 30 days."""
    today = datetime.now(timezone.utc).date()
    return ok("Analytics retrieved", dashboard_view(analytics.dashboard(get_db(), g.user, today)))


@bp.get("/analytics/global")
@responds(200, Envelope[GlobalAnalytics])
@login_required
def global_analytics():
    """Totals over every user and the agents used in the most conversations (admins only)."""
    return ok("Global analytics retrieved", global_view(analytics.global_stats(get_db(), g.user)))


@bp.get("/search")
@responds(200, Envelope[SearchPage])
@login_required
def search_messages():
    """Search the messages of the user's conversations, best match first."""
    query = parse_query(SearchQuery)
    results, total = search.search_messages(get_db(), g.user, query.query, query.limit, query.offset)
    return ok(found(total, "result"), {"results": [search_result_view(m) for m in results], "query": query.query,
                                       "total": total, "limit": query.limit, "offset": query.offset})
