from django.conf import settings
from django.db import models


class Message(models.Model):
    """A chat message; ``chat.add_message`` is the permission ``chat.say`` requires."""

    room = models.CharField(max_length=80, db_index=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]
