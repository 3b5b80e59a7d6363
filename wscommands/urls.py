"""HTTP URL patterns of wscommands.

``session_id`` (the seed's authentication flow), ``metrics`` (Prometheus, token or staff
only) and ``wscommands/ops/`` (the staff operations page and its data).
"""

from django.urls import path

from .views import ops_page, ops_snapshot, prometheus_metrics, session_id

urlpatterns = [
    path("session_id", session_id, name="wscommands-session-id"),
    path("metrics", prometheus_metrics, name="wscommands-metrics"),
    path("wscommands/ops/", ops_page, name="wscommands-ops"),
    path("wscommands/ops/snapshot", ops_snapshot, name="wscommands-ops-snapshot"),
]
