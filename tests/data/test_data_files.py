"""Your own data from .csv / .npz / .pt files: each format, and each bad file's error (before any training)."""

import numpy as np
import pytest
import torch

from beyondsgd.data import DatasetFileError, load_dataset, load_file
from beyondsgd.data.files import split_indices


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


@pytest.fixture
def iris_like(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for label, center in (("setosa", 0.0), ("versicolor", 3.0), ("virginica", 6.0)):
        for _ in range(20):
            x = rng.normal(center, 1.0, size=3)
            rows.append([f"{x[0]:.4f}", label, f"{x[1]:.4f}", f"{x[2]:.4f}"])
    return write_csv(tmp_path / "flowers.csv", ["a", "species", "b", "c"], rows)


def test_csv_string_labels_target_column_and_stratified_split(iris_like):
    data = load_dataset(iris_like, target="species")
    assert data.task == "classification" and data.num_classes == 3
    assert data.class_names == ("setosa", "versicolor", "virginica")  # sorted, id = position
    assert data.input_shape == (3,) and data.n_train + data.n_test == 60
    assert data.n_test == 12  # 20% of each class of 20: 4 per class, stratified
    assert torch.bincount(data.y_test).tolist() == [4, 4, 4]
    assert "classes 0=setosa, 1=versicolor, 2=virginica" in data.source
    # Features are standardized with train statistics, as for every dataset.
    assert torch.allclose(data.X_train.mean(0), torch.zeros(3), atol=1e-5)
    again = load_dataset(str(iris_like), target="species")
    assert torch.equal(again.X_test, data.X_test)  # deterministic given the seed
    other = load_dataset(str(iris_like), target="species", seed=1)
    assert not torch.equal(other.X_test, data.X_test)  # ... and the seed moves the split


def test_csv_default_target_is_the_last_column(tmp_path):
    f = write_csv(tmp_path / "d.csv", ["x1", "x2", "y"], [[i, i * 2, i % 2] for i in range(10)])
    data = load_dataset(f, standardize="none")
    assert data.num_classes == 2 and data.class_names == ("0", "1")
    assert set(data.X_train[:, 0].tolist()) | set(data.X_test[:, 0].tolist()) == set(map(float, range(10)))


def test_csv_regression(tmp_path):
    rows = [[i / 10, (i / 10) ** 2 + 0.123] for i in range(30)]
    f = write_csv(tmp_path / "r.csv", ["x", "y"], rows)
    with pytest.raises(DatasetFileError, match="looks continuous.*--task regression"):
        load_dataset(f)
    data = load_dataset(f, task="regression", test_fraction=0.5)
    assert data.task == "regression" and data.num_classes is None and data.y_train.dtype == torch.float32
    assert data.y_train.shape == (15, 1)  # one column per output, like the model's predictions
    assert data.n_test == 15


def test_npz_with_and_without_split(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2, 3))  # samples may have any shape
    y = np.array([5, 7] * 25)
    np.savez(tmp_path / "xy.npz", X=X, y=y)
    data = load_dataset(tmp_path / "xy.npz")
    assert data.input_shape == (2, 3) and data.num_classes == 2 and data.class_names == ("5", "7")
    assert data.n_test == 10
    np.savez(tmp_path / "split.npz", X_train=X[:40], y_train=y[:40], X_test=X[40:], y_test=y[40:])
    data = load_dataset(tmp_path / "split.npz", standardize="none")
    assert data.n_train == 40 and data.n_test == 10
    assert np.allclose(data.X_test.numpy(), X[40:], atol=1e-6)
    assert data.y_test.tolist() == [0, 1] * 5  # 5 -> 0, 7 -> 1


def test_pt_dict_of_tensors(tmp_path):
    X = torch.randn(40, 4)
    y = torch.arange(40) % 4
    torch.save({"X": X, "y": y}, tmp_path / "d.pt")
    data = load_dataset(tmp_path / "d.pt")
    assert data.num_classes == 4 and data.n_train == 32
    torch.save(
        {"X_train": X[:30], "y_train": y[:30].float(), "X_test": X[30:], "y_test": y[30:].float()}, tmp_path / "r.pt"
    )
    assert load_dataset(tmp_path / "r.pt", task="regression").task == "regression"


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the file is empty"),
        ("a,b,y\n", "header row but no data rows"),
        ("a,b,y\n1,2,0\n3,x,1\n5,6,0\n", "feature column 'b' is not numeric \\(line 3: 'x'\\)"),
        (
            "a,b,y\n1,2,0\n3,nan,1\n5,inf,0\n7,8,1\n",
            "2 NaN, infinite or missing value\\(s\\); the first is in row 1 \\(0-based sample index, line 3 of the CSV\\)",
        ),
        ("a,b,y\n1,2,0\n3,,1\n5,6,0\n", "1 NaN, infinite or missing value"),
        ("a,b,y\n1,2,cat\n3,4,cat\n5,6,cat\n", "one class only \\('cat'\\)"),
        ("a,b,y\n1,2,0\n3,4\n", "line 3 has 2 fields, the header has 3"),
        ("a,b,y\n1,2,0\n3,4,\n5,6,1\n", "have no label"),
    ],
)
def test_bad_csv_files(tmp_path, content, message):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(DatasetFileError, match=message) as err:
        load_dataset(f)
    assert str(f) in str(err.value)  # the message names the file


def test_missing_target_column_lists_the_columns(tmp_path):
    f = write_csv(tmp_path / "d.csv", ["x", "label"], [[1, 0], [2, 1]])
    with pytest.raises(DatasetFileError, match="target column 'diagnosis' does not exist; columns: x, label"):
        load_dataset(f, target="diagnosis")


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DatasetFileError, match="nope.csv'.*file not found"):
        load_dataset(tmp_path / "nope.csv")
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DatasetFileError, match="unknown file format '.xlsx'; readable: .csv, .npz, .pt"):
        load_file(tmp_path / "d.xlsx")


def test_bad_array_files(tmp_path):
    np.savez(tmp_path / "len.npz", X=np.zeros((10, 2)), y=np.zeros(9))
    with pytest.raises(DatasetFileError, match="mismatched lengths: X has 10 rows but y has 9"):
        load_dataset(tmp_path / "len.npz")
    np.savez(tmp_path / "keys.npz", features=np.zeros((10, 2)))
    with pytest.raises(
        DatasetFileError, match="expected arrays X_train, y_train, X_test, y_test or X, y; found features"
    ):
        load_dataset(tmp_path / "keys.npz")
    X = np.ones((6, 2))
    X[4, 1] = np.inf
    np.savez(tmp_path / "inf.npz", X=X, y=np.arange(6) % 2)
    with pytest.raises(DatasetFileError, match="X has 1 NaN, infinite or missing value\\(s\\); the first is in row 4"):
        load_dataset(tmp_path / "inf.npz")
    np.savez(tmp_path / "one.npz", X=np.ones((6, 2)), y=np.zeros(6))
    with pytest.raises(DatasetFileError, match="one class only"):
        load_dataset(tmp_path / "one.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DatasetFileError, match="not a readable .npz file"):
        load_dataset(tmp_path / "junk.npz")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(DatasetFileError, match="expected a dict of tensors"):
        load_dataset(tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(DatasetFileError, match="not a readable .pt file"):
        load_dataset(tmp_path / "junk.pt")
    np.savez(tmp_path / "t.npz", X=np.ones((6, 2)), y=np.arange(6) % 2)
    with pytest.raises(DatasetFileError, match="only applies to .csv"):
        load_dataset(tmp_path / "t.npz", target="y")


def test_file_options_are_checked(tmp_path):
    f = write_csv(tmp_path / "d.csv", ["x", "y"], [[i, i % 2] for i in range(10)])
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset(f, test_fraction=1.5)
    with pytest.raises(ValueError, match="unknown option 'colour'"):
        load_dataset(f, colour="red")


def test_stratified_split_keeps_every_class_and_is_seeded():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 2)
    train, test = split_indices(len(labels), 0.2, seed=3, labels=labels)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(62))
    assert np.bincount(labels[test]).tolist() == [10, 2, 1]
    assert np.array_equal(test, split_indices(len(labels), 0.2, seed=3, labels=labels)[1])
