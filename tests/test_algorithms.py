import pytest
import torch
from torch import nn

from beyondsgd.bench import Experiment, make_trainer, run_experiment

CE = nn.functional.cross_entropy


@pytest.mark.parametrize(
    "model,X,y,needle",
    [
        (
            nn.Sequential(nn.Flatten(), nn.Linear(10, 3)),
            torch.randn(4, 12),
            torch.zeros(4, dtype=torch.long),
            "inputs of shape (12,)",
        ),
        (nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), torch.randn(4, 12), torch.full((4,), 5), "targets of shape ()"),
    ],
)
def test_model_that_does_not_fit_the_data_is_a_clear_error(model, X, y, needle):
    with pytest.raises(ValueError, match="does not fit the data") as info:
        make_trainer("sgd", model, X, y, CE)
    assert needle in str(info.value)


def test_am_refuses_a_cnn_before_training():
    exp = Experiment(algorithm="tiam", model="cnn", epochs=1, dataset_options={"n_train": 50}, device="cpu")
    with pytest.raises(ValueError, match="(?i)mlp|linear|cnn|conv"):
        run_experiment(exp, progress=False)
