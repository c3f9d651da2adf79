"""The emulator's routes, one module per resource; :data:`ROUTES` is the whole table."""

from wsync_dagster.emulator.routes import admin, catalog, profiles, runs, token

ROUTES = [*token.ROUTES, *catalog.ROUTES, *runs.ROUTES, *profiles.ROUTES, *admin.ROUTES]
