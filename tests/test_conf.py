"""The WSCOMMANDS settings view: read once, then plain attributes, forgotten on a change."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from wscommands.conf import DEFAULTS, wscommands_settings


def test_a_change_of_wscommands_is_seen_and_undone():
    before = wscommands_settings.MAX_PENDING_REQUESTS
    assert DEFAULTS["MAX_PENDING_BYTES"] == wscommands_settings.MAX_PENDING_BYTES
    with override_settings(WSCOMMANDS={"MAX_PENDING_REQUESTS": before + 7}):
        assert before + 7 == wscommands_settings.MAX_PENDING_REQUESTS
        # Settings not named keep their defaults.
        assert DEFAULTS["MAX_PENDING_BYTES"] == wscommands_settings.MAX_PENDING_BYTES
    assert before == wscommands_settings.MAX_PENDING_REQUESTS


def test_an_unknown_name_is_an_attribute_error_before_and_after_the_first_read():
    wscommands_settings.reload()
    with pytest.raises(AttributeError, match="No wscommands setting 'NOT_A_SETTING'"):
        wscommands_settings.NOT_A_SETTING  # noqa: B018
    assert DEFAULTS["PREFIX"] == wscommands_settings.PREFIX
    with pytest.raises(AttributeError):
        wscommands_settings.NOT_A_SETTING  # noqa: B018
    assert getattr(wscommands_settings, "NOT_A_SETTING", "fallback") == "fallback"


def test_a_misspelt_key_is_refused_at_each_read_until_it_is_fixed():
    with override_settings(WSCOMMANDS={"MAX_PENDING_REQUEST": 3}):
        for _ in range(2):  # not loaded by the first, refused read
            with pytest.raises(ImproperlyConfigured, match="MAX_PENDING_REQUESTS"):
                wscommands_settings.PREFIX  # noqa: B018
    assert DEFAULTS["PREFIX"] == wscommands_settings.PREFIX
