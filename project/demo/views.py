"""The demo's pages: the live page at ``/`` and sign-up (sign-in/out are Django's own views)."""

from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import Permission
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


def index(request: HttpRequest) -> HttpResponse:
    """The demo page: chat rooms, who is online, a shared counter (all over wscommands)."""
    user = None
    if request.user.is_authenticated:
        user = {"id": request.user.pk, "username": request.user.get_username()}
    return render(request, "demo/index.html", {"ws_user": user})


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account that may chat (``chat.add_message``) and sign it in."""
    if request.user.is_authenticated:
        return redirect("index")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="chat", codename="add_message")
        )
        # Several backends (django-axes first): name the one that knows this user.
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("index")
    return render(request, "registration/signup.html", {"form": form})
