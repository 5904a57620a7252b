"""Checkpoint conversion into R(2+1)D-18: one table of methods, strict verification, safe loading."""

from severe.checkpoints.convert import Converted, convert_file, convert_object, detect_file, detect_method, save_converted
from severe.checkpoints.loading import read_checkpoint
from severe.checkpoints.methods import METHODS, MethodSpec
from severe.checkpoints.weights import SCRATCH_META, build_initialised_backbone, is_converted, load_weights

__all__ = [
    "METHODS", "MethodSpec", "Converted", "SCRATCH_META", "build_initialised_backbone", "convert_file",
    "convert_object", "detect_file", "detect_method", "is_converted", "load_weights", "read_checkpoint",
    "save_converted",
]
