from .base import Generator, GeneratorError, check_generator, wrap
from .registry import available_generators, generator_from_spec, load_generator, register_generator

__all__ = ["Generator", "GeneratorError", "check_generator", "wrap", "available_generators",
           "generator_from_spec", "load_generator", "register_generator"]
