"""avss: audio-visual speech separation toolkit.

`from avss import Separator; model = Separator.from_pretrained("checkpoints/default.pt")`
"""

__version__ = "0.1.0"
__all__ = ["Separator", "__version__"]


def __getattr__(name):  # keep `import avss` light: torch loads only when a model is needed
    if name == "Separator":
        from avss.models.base import Separator

        return Separator
    raise AttributeError(f"module 'avss' has no attribute {name!r}")
