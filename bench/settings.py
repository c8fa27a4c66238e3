"""Settings for the throughput bench: the product's, plus one trivial logged-in page to compare."""

from dashboard.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
