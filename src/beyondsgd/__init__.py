"""beyondsgd: training neural networks with algorithms beyond plain SGD.

Layers, from the bottom: ``validation``/``device`` and ``distributed``; ``data``,
``models`` and ``training`` (the trainer interface); the algorithms ``optim``,
``am`` and ``ntk``; ``algorithms`` (the one catalogue of names); ``bench`` (runner,
comparisons, statistics, reports); ``sweep`` and ``reproduce``; ``cli``. Arrows
point down only (``tests/test_layers.py`` checks it).
"""

from beyondsgd._version import __version__

__all__ = ["__version__"]
