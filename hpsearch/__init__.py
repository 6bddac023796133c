"""hpsearch: coarse-to-fine hyperparameter search for NumPy MLPs."""

__version__ = "0.1.0"
__all__ = ["__version__"]
