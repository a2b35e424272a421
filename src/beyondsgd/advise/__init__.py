"""``beyondsgd advise``: which training method should I use on my data, within a time budget?

:func:`advise` races every algorithm family of the catalogue (baselines, momentum,
multiplicative/hybrid rules, DSGD, the AM trainers where the model allows) with
TPE tuning and ASHA pruning on a validation split, re-runs the finalists over
several seeds on the full training set, and writes a report: the recommended
method with a confidence interval, the methods statistically tied with it, and
what each family's best buys over tuned Adam and tuned SGD.
"""

from beyondsgd.advise.core import AdviseResult, advise, parse_budget

__all__ = ["AdviseResult", "advise", "parse_budget"]
