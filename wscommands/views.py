"""HTTP views: the session key for clients that cannot send the session cookie."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache


@never_cache
def session_id(request: HttpRequest) -> HttpResponse:
    """``GET /session_id``: the current browser session's key as plain text.

    A session is created if the browser has none yet, so the key can be sent with the
    ``authenticate`` command (it only succeeds once the session has a logged-in user).
    """
    if request.session.session_key is None:
        request.session.save()
    return HttpResponse(request.session.session_key, content_type="text/plain")
