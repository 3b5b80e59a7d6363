"""A reload (override_settings entered or left, a system check) that lands while another
thread is in its first read must leave the settings readable.

``Settings.__getattr__`` copies the values into the instance, then swaps its class; ``reload``
clears the instance and swaps the class back. Unlocked, ``update -> [reload: clear, class =
Settings] -> class = LoadedSettings`` left the instance empty under the class without
``__getattr__``: every later read, in every thread, raised AttributeError until the next
reload (found by the penetration test of issue 20). The interleaving is forced here with a
trace function: another thread's reload runs just before the reader's class swap.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from django.test import override_settings

from wscommands import conf
from wscommands.conf import DEFAULTS, wscommands_settings


def _reload_before_the_class_swap():
    """A tracer: when ``Settings.__getattr__`` reaches its class swap, another thread reloads
    (as its override_settings would at that moment), once."""
    getattr_code = conf.Settings.__getattr__.__code__
    swap_line = next(
        number
        for number, line in enumerate(
            Path(conf.__file__).read_text().splitlines(),
            start=1,
        )
        if "self.__class__ = LoadedSettings" in line
    )
    fired: list[threading.Thread] = []

    def local(frame, event, arg):
        if event == "line" and frame.f_lineno == swap_line and not fired:
            other = threading.Thread(target=wscommands_settings.reload)  # the other thread
            fired.append(other)
            other.start()
            other.join(0.5)  # (a reload that waits for this read, as it should, times out)
        return local

    def tracer(frame, event, arg):
        if frame.f_code is getattr_code:
            return local
        return None

    return tracer, fired


def test_a_reload_during_a_first_read_leaves_the_settings_readable():
    wscommands_settings.reload()
    tracer, fired = _reload_before_the_class_swap()
    with override_settings(WSCOMMANDS={"MAX_PENDING_REQUESTS": 7}):
        wscommands_settings.reload()
        sys.settrace(tracer)
        try:
            first = wscommands_settings.MAX_PENDING_REQUESTS  # the racing first read
        finally:
            sys.settrace(None)
        assert fired, "the class swap line was not reached"
        fired[0].join()
        assert first == 7
        try:
            # Any setting, any time later, in any thread (until the next reload).
            assert DEFAULTS["PREFIX"] == wscommands_settings.PREFIX
            assert wscommands_settings.MAX_PENDING_REQUESTS == 7
        finally:
            wscommands_settings.reload()  # do not leave a broken object to the next tests
