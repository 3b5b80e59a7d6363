"""HTTP views: the session key for clients that cannot send the session cookie."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache


@never_cache
def session_id(request: HttpRequest) -> HttpResponse:
    """``GET /session_id``: the logged-in browser's session key as plain text, else empty.

    The key is only good for the ``authenticate`` command, which needs a logged-in user, so
    an anonymous visitor gets an empty body and nothing is stored for them: no session row
    per request (the view used to create one for every cookieless GET).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return HttpResponse("", content_type="text/plain")
    return HttpResponse(request.session.session_key, content_type="text/plain")
