"""The local code location: ``dagster dev -m wsync_dagster.local.definitions``.

The production assets, jobs and schedules (:func:`wsync_dagster.code_location.build_definitions`) bound
to the local stand-ins (:func:`wsync_dagster.local.resources.local_resources`). ``python3 dev.py ui``
starts the stand-ins and opens this location; ``python3 dev.py demo`` builds the same Definitions.
"""

import os
from collections.abc import Mapping

import dagster as dg

from wsync_dagster.code_location import build_definitions
from wsync_dagster.local.resources import local_resources


def build_local_definitions(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """The code location for ``WSYNC_TARGET=local`` (or unset), from ``environ`` (default os.environ)."""
    environ = os.environ if environ is None else environ
    return build_definitions(environ, resources=local_resources(environ))


defs = build_local_definitions()
