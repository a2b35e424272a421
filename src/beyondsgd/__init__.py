"""beyondsgd: training neural networks with algorithms beyond plain SGD."""

__version__ = "0.1.0"
