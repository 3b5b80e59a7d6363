"""HTTP URL patterns of wscommands: ``session_id/`` for the seed's authentication flow."""

from django.urls import path

from .views import session_id

urlpatterns = [path("session_id", session_id, name="wscommands-session-id")]
