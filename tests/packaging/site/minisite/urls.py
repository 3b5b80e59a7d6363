"""HTTP routes: wscommands' own (session_id, metrics, the operations page)."""

from django.urls import include, path

urlpatterns = [path("", include("wscommands.urls"))]
