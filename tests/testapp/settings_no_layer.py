"""The example project without a channel layer (a daphne start-up must fail, saying why)."""

from project.settings import *  # noqa: F403

CHANNEL_LAYERS = {}
