from .base import Generator, GeneratorError, GroundTruth, check_generator, check_same_space, wrap
from .registry import available_generators, generator_from_spec, load_generator, register_generator

__all__ = ["Generator", "GeneratorError", "GroundTruth", "check_generator", "check_same_space", "wrap",
           "available_generators", "generator_from_spec", "load_generator", "register_generator"]
