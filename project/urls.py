"""HTTP routes of the example project."""

from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from project.demo.views import index, signup

urlpatterns = [
    path("", index, name="index"),
    path("", include("wscommands.urls")),
    # Sign-in (accounts/login/) and sign-out (accounts/logout/, POST) are Django's views.
    path("accounts/signup/", signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    # The demo runs under daphne, which serves no static files, so the example serves them
    # itself (the browser client and the demo's CSS/JS). In production, use collectstatic
    # and a web server or WhiteNoise instead.
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]
