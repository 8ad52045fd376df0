from .base import Generator, GeneratorError, check_generator, wrap
from .registry import available_generators, load_generator, register_generator

__all__ = ["Generator", "GeneratorError", "check_generator", "wrap", "available_generators",
           "load_generator", "register_generator"]
