"""LD discovery (Voynov & Babenko 2020): ``discover(G, ...)`` trains directions A and a reconstructor R.

config.py holds the options and presets, pairs.py builds the image pairs R reads (and measures R on
held-out ones), train.py is the loop (read it top to bottom), checkpoints.py its resumable state.
"""
from .checkpoints import CHECKPOINT, load_snapshots
from .config import (PARAMETRIZATIONS, PRESETS, RANKINGS, RECONSTRUCTORS, SHIFT_WEIGHT_SCHEDULES, STARTS,
                     DiscoveryConfig, preset, resolve_config)
from .pairs import image_pairs, recognizability, reconstructor_accuracy, sample_pairs, step_rng
from .train import DiscoveryResult, _Trainable, discover, shift_weight_at, starting_directions, train_step

