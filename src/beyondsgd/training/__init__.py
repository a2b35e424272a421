"""The training core: the interface every algorithm trains through.

:class:`Trainer` is what the benchmark runner drives (one update per
:meth:`Trainer.train_step`); :class:`GradientTrainer` adapts any
``torch.optim.Optimizer`` to it. Algorithms that are not ``torch.optim``
optimizers (:mod:`beyondsgd.am`) implement :class:`Trainer` directly. This
package sits below the algorithms and knows nothing of the runner.
"""

from beyondsgd.training.trainer import GradientTrainer, LossFn, Trainer, batch_indices, step_with_closure

__all__ = ["GradientTrainer", "LossFn", "Trainer", "batch_indices", "step_with_closure"]
