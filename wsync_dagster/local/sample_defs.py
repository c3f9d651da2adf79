"""The sample registry, in the local code location's defs folder (``wsync_dagster/local/defs/``).

The demo's nine syncs over the sample warehouse (``local/sample_data.py``) and that warehouse's
tables as external assets. Production never loads them: its defs folder is ``wsync_dagster/defs/``.
"""

from pathlib import Path

import dagster as dg

import wsync_dagster.local.defs
from wsync_dagster.code_location import defs_tree, sync_components
from wsync_dagster.component import WarehouseSyncComponent

SAMPLE_DEFS = Path(wsync_dagster.local.defs.__file__).resolve().parent
SAMPLE_REGISTRY = SAMPLE_DEFS / "warehouse_sync" / "defs.yaml"


def sample_tree() -> dg.ComponentTree:
    """The component tree of the local defs folder, loaded as ``dg`` loads the production one."""
    return defs_tree(wsync_dagster.local.defs)


def sample_components() -> list[WarehouseSyncComponent]:
    """The sample registry's sync components, checked together."""
    return sync_components(sample_tree())
