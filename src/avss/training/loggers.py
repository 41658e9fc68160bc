"""Logger fixes on top of Lightning's."""
from __future__ import annotations

from lightning.pytorch.loggers import CometLogger as _LightningCometLogger


class CometLogger(_LightningCometLogger):
    """Comet that also works with no account. Lightning's CometLogger turns `online=False` into a *disabled*
    experiment that saves nothing; here it is a real OfflineExperiment whose archive (`<offline_directory>/*.zip`,
    upload later with `comet upload`) is written when training ends."""

    def __init__(self, online: bool = False, offline_directory: str = ".cometml-runs", **kwargs):
        self._offline = not online
        super().__init__(online=None if self._offline else True, offline_directory=offline_directory, **kwargs)

    def _create_experiment(self) -> None:
        if self._offline:
            self._online = False
        super()._create_experiment()

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._offline and self._experiment is not None:
            self._experiment.end()
