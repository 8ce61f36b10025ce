"""Training: config, optimiser and schedules, densification, checkpoints, the trainer loop."""
from le3d.train.config import TrainConfig, load_config
from le3d.train.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "load_config", "train"]
