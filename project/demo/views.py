from django.shortcuts import render


def index(request):
    """The demo page."""
    return render(request, "demo/index.html")
