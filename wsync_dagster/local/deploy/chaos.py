"""A daemon crash at the worst moment of a launch, on demand, for the deployment smoke.

Dagster's run queue (in ``dagster-daemon``) marks a run STARTING, then asks the run launcher to hand
it to the code server. A daemon that dies between the two leaves a run that nothing will ever hand
over: run monitoring fails it once it has been STARTING for ``start_timeout_seconds``, and only run
retries (deploy/dagster.yaml, ``run_retries``) run it again. A SIGKILL lands in that gap only by
chance (the smoke's daemon SIGKILLs once did, and a rotating sync ended FAILURE without reaching
mParticle); :class:`CrashingRunLauncher` lands there every time.

It is Dagster's default launcher plus one thing: when the file named by ``marker`` exists, the next
launch deletes it and exits the process at once, without cleanup, as a SIGKILL would. The smoke
swaps it in with :func:`instance_settings`; every other setting is deploy/dagster.yaml's.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import dagster as dg

LAUNCHER_MODULE = "wsync_dagster.local.deploy.chaos"


class CrashingRunLauncher(dg.DefaultRunLauncher):
    """:class:`dagster.DefaultRunLauncher` whose process exits at the first launch after
    ``marker`` appears (the marker is deleted first, so exactly one launch is lost)."""

    def __init__(self, inst_data: Any = None, marker: str = "") -> None:
        super().__init__(inst_data=inst_data)
        self.marker = marker

    @classmethod
    def config_type(cls) -> dict[str, dg.Field]:
        return {"marker": dg.Field(dg.StringSource, description="file that arms the crash")}

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> Self:
        return cls(inst_data=inst_data, marker=config_value["marker"])

    def launch_run(self, context: Any) -> None:
        if self.marker and os.path.exists(self.marker):
            os.unlink(self.marker)
            os._exit(137)  # the exit status of a SIGKILLed process: no cleanup, no event
        super().launch_run(context)


def instance_settings(marker: Path) -> dict[str, dict[str, Any]]:
    """The ``dagster.yaml`` section that swaps in :class:`CrashingRunLauncher`, armed by ``marker``
    (for :class:`~wsync_dagster.local.deploy.cluster.LocalDeployment`'s ``instance``)."""
    return {
        "run_launcher": {
            "module": LAUNCHER_MODULE,
            "class": CrashingRunLauncher.__name__,
            "config": {"marker": str(marker)},
        }
    }
