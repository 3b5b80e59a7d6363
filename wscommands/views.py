"""HTTP views: the session key, the Prometheus metrics and the operations page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache

from .backends import BackendUnavailable
from .conf import wscommands_settings
from .observability import prometheus
from .observability.access import is_staff
from .ops import report as ops


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


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: this process's metrics, for ``METRICS_TOKEN`` or a staff session.

    403 for anyone else; 404 when metrics are off (``METRICS`` false, or prometheus-client
    missing: the body says what to install). The engine answers with the same function
    (:func:`~wscommands.observability.prometheus.scrape`).
    """
    return prometheus.scrape(
        request.headers.get("Authorization", ""), getattr(request, "user", None)
    )


@never_cache
def ops_page(request: HttpRequest) -> HttpResponse:
    """``GET /wscommands/ops/``: the live operations page (staff only).

    Anyone else is sent to ``settings.LOGIN_URL`` with ``?next=`` back here, as the admin
    does: a signed-in user who is not staff can sign in there as someone who is.
    """
    if not is_staff(getattr(request, "user", None)):
        # As django.contrib.auth.views.redirect_to_login, which cannot be imported before
        # the apps are loaded (this module can).
        query = urlencode({REDIRECT_FIELD_NAME: request.get_full_path()}).replace("%2F", "/")
        return HttpResponseRedirect(f"{resolve_url(settings.LOGIN_URL)}?{query}")
    return render(request, "wscommands/ops.html", {"interval": wscommands_settings.OPS_INTERVAL})


@never_cache
async def ops_snapshot(request: HttpRequest) -> HttpResponse:
    """``GET /wscommands/ops/snapshot``: every process's figures as JSON (staff only)."""
    user = await request.auser() if hasattr(request, "auser") else None
    if not is_staff(user):
        return JsonResponse({"error": "staff only"}, status=403)
    try:
        return JsonResponse(await ops.snapshot())
    except BackendUnavailable as exc:
        return JsonResponse({"error": f"backend unavailable: {exc}"}, status=503)
