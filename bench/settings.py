"""Settings for bench.scale's web tier: the product's, plus a bare view to compare with.

Never loaded in production: only `python -m bench.scale` points DJANGO_SETTINGS_MODULE here.
"""

from btro.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
