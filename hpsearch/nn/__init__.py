"""The NumPy network engine: layers, losses, init, update rules, the MLP and its trainer.

Depends on numpy only. The main entry points are re-exported here; the building
blocks live in their modules (`hpsearch.nn.layers`, `.losses`, `.optim`, ...).
"""

from hpsearch.nn.model import MLP, MLPConfig
from hpsearch.nn.trainer import TrainerConfig, TrainResult, TrainState, train

__all__ = ["MLP", "MLPConfig", "TrainResult", "TrainState", "TrainerConfig", "train"]
