"""The demo's shared counter, kept in the database so it survives restarts in every mode
(the library's global state is in memory by default: one process, lost at a restart)."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import F

#: The counter's row (one row: the demo has one shared counter).
COUNTER = "shared"


class SharedCounter(models.Model):
    """A named counter; the demo uses the row :data:`COUNTER`."""

    name = models.CharField(primary_key=True, max_length=50)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


def counter_value() -> int:
    """The shared counter's value (0 before its first increment)."""
    return SharedCounter.objects.filter(name=COUNTER).values_list("value", flat=True).first() or 0


def add_to_counter(amount: int, limit: int) -> int:
    """Add ``amount`` atomically and return the new value; at ``limit`` it starts over (the
    increment that crossed it subtracts it, in the same transaction, so never twice)."""
    row = SharedCounter.objects.filter(name=COUNTER)
    with transaction.atomic():
        # The UPDATE first: it takes the row's write lock before anything is read, so
        # concurrent increments queue (PostgreSQL row lock, SQLite's write lock).
        if not row.update(value=F("value") + amount):
            _, created = SharedCounter.objects.get_or_create(
                name=COUNTER, defaults={"value": amount}
            )
            if not created:  # another increment created it first
                row.update(value=F("value") + amount)
        value = row.values_list("value", flat=True).get()
        if value >= limit:
            row.update(value=F("value") - limit)
            value -= limit
    return value
