"""HTTP routes of the example project."""

from django.contrib import admin
from django.urls import include, path

from project.demo.views import index

urlpatterns = [
    path("", index, name="index"),
    path("", include("wscommands.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
