"""Where the embedded default keeps its state: the working directory, or ``WSYNC_HOME``.

``.wsync/`` holds the local mParticle's state and the sample anchor (``python3 dev.py demo`` and
``ui``) and the local deployment's data (``.wsync/deploy/``, ``python3 dev.py deploy``);
``.dagster_home/`` is the ``DAGSTER_HOME`` the demo and the UI share. They sit in ``WSYNC_HOME``
when it is set, else in the working directory (``dev.py`` runs from the checkout's root), never
beside the installed package: an installed package lives in ``site-packages/``.
"""

import os
from collections.abc import Mapping
from pathlib import Path

HOME_VAR = "WSYNC_HOME"


def state_root(environ: Mapping[str, str] | None = None) -> Path:
    """The folder that holds ``.wsync/`` and ``.dagster_home/``: ``WSYNC_HOME``, else the working
    directory; absolute."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(HOME_VAR) or Path.cwd()).expanduser().resolve()
