import pytest
import torch
from torch import nn

from beyondsgd import optim


def test_available_has_baselines():
    assert {"sgd", "adam", "rmsprop", "adagrad"} <= set(optim.available())


def test_create_from_params_and_model():
    model = nn.Linear(3, 2)
    opt = optim.create("sgd", model.parameters(), lr=0.1, momentum=0.9)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    opt2 = optim.create("ADAM", model)  # a model works too; names are case-insensitive
    assert isinstance(opt2, torch.optim.Adam)
    assert opt2.param_groups[0]["lr"] == optim.get_spec("adam").defaults["lr"]


def test_param_groups_pass_through():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = optim.create("sgd", [{"params": a.parameters()}, {"params": b.parameters(), "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown optimizer 'nope'; available: .*sgd"):
        optim.create("nope", [torch.zeros(1, requires_grad=True)])


@pytest.mark.parametrize(
    "name,hp,needle",
    [
        ("sgd", {"lr": -1.0}, "lr=-1.0"),
        ("sgd", {"momentum": 1.5}, "momentum=1.5"),
        ("adam", {"betas": (0.9, 1.0)}, "betas="),
        ("adam", {"eps": 0.0}, "eps=0.0"),
        ("adam", {"learning_rate": 0.1}, "unknown hyperparameter 'learning_rate'"),
        ("rmsprop", {"alpha": float("nan")}, "alpha=nan"),
    ],
)
def test_bad_hyperparameters_name_the_argument(name, hp, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        optim.create(name, [torch.zeros(1, requires_grad=True)], **hp)


def test_register_checks_defaults():
    spec = optim.OptimizerSpec("bad", torch.optim.SGD, {"lr": optim.get_spec("sgd").hyperparams["lr"]}, {"lr": -1.0})
    with pytest.raises(ValueError, match="lr=-1.0"):
        optim.register(spec)
    assert "bad" not in optim.available()


def test_a_model_without_parameters_and_madams_gamma_are_refused():
    for kw in ({}, {"weight_decay": 0.1}):
        with pytest.raises(ValueError, match=r"optimizer 'm_adam': the model ReLU has no parameters"):
            optim.create("m_adam", nn.ReLU(), **kw)
    with pytest.raises(ValueError, match=r"gamma"):
        optim.create("madam", [nn.Parameter(torch.ones(2))], gamma=0.5)
