"""avss: audio-visual speech separation toolkit."""

__version__ = "0.1.0"

from avss.models.base import Separator  # noqa: E402

__all__ = ["Separator", "__version__"]
