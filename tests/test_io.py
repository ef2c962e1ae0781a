"""fastbp.load and fastbp.save: the course's .mat files, .npz data and models, .csv."""

import numpy as np
import pytest
from scipy.io import savemat

import fastbp


def course_mat(path, X=None, y=None, **weights):
    """A .mat file as Octave writes the course's: y an (m, 1) column of labels 1 … K."""
    contents = dict(weights)
    if X is not None:
        contents["X"] = X
    if y is not None:
        contents["y"] = np.asarray(y, dtype=float).reshape(-1, 1)
    savemat(path, contents)
    return path


# ----------------------------------------------------------------------------- .mat


def test_ex4_weights(shared_data):
    from scipy.io import loadmat

    data = fastbp.load(shared_data / "ex4weights.mat")
    Theta1, Theta2 = data["thetas"]
    assert Theta1.shape == (25, 401)
    assert Theta2.shape == (10, 26)
    assert data["layer_sizes"] == (400, 25, 10)
    raw = loadmat(shared_data / "ex4weights.mat")
    np.testing.assert_array_equal(Theta1, raw["Theta1"])
    np.testing.assert_array_equal(Theta2, raw["Theta2"])
    np.testing.assert_array_equal(data["theta"], fastbp.pack([raw["Theta1"], raw["Theta2"]]))
    assert data["theta"].flags.c_contiguous
    assert "X" not in data
    assert "y" not in data


def test_course_labels_1_to_K_become_0_to_K_minus_1(tmp_path, rng):
    X = rng.uniform(size=(6, 3))
    path = course_mat(tmp_path / "data.mat", X, [10, 1, 2, 10, 3, 9])
    data = fastbp.load(path)
    np.testing.assert_array_equal(data["X"], X)
    np.testing.assert_array_equal(data["y"], [9, 0, 1, 9, 2, 8])
    assert data["y"].dtype == np.int64
    np.testing.assert_array_equal(data["classes"], np.arange(1, 11))
    np.testing.assert_array_equal(data["classes"][data["y"]], [10, 1, 2, 10, 3, 9])


def test_weights_fix_K_and_the_labels_keep_the_output_unit_order(tmp_path, rng):
    sizes = (3, 4, 5)
    Theta1, Theta2 = fastbp.unpack(rng.normal(size=fastbp.n_params(sizes)), sizes)
    X = rng.uniform(size=(4, 3))
    path = course_mat(tmp_path / "all.mat", X, [1, 2, 2, 3], Theta1=Theta1, Theta2=Theta2)
    data = fastbp.load(path)
    np.testing.assert_array_equal(data["classes"], [1, 2, 3, 4, 5])  # K = 5 from Theta2
    np.testing.assert_array_equal(data["y"], [0, 1, 1, 2])
    assert data["layer_sizes"] == sizes
    J = fastbp.cost(data["theta"], data["X"], data["y"], data["layer_sizes"])
    assert J == fastbp.cost(fastbp.pack([Theta1, Theta2]), X, [0, 1, 1, 2], sizes)


def test_octave_column_major_unrolling(tmp_path, rng):
    """[Theta1(:); Theta2(:)] as Octave writes it needs order="F"; Theta1, Theta2 need nothing."""
    sizes = (4, 3, 2)
    Theta1 = rng.normal(size=(3, 5))
    Theta2 = rng.normal(size=(2, 4))
    nn_params = np.concatenate([Theta1.ravel(order="F"), Theta2.ravel(order="F")])
    # Octave: nn_params(1:15) is Theta1's first column, then its second, …
    np.testing.assert_array_equal(nn_params[:3], Theta1[:, 0])
    path = tmp_path / "octave.mat"
    savemat(path, {"Theta1": Theta1, "Theta2": Theta2, "nn_params": nn_params.reshape(-1, 1)})
    data = fastbp.load(path)
    np.testing.assert_array_equal(data["thetas"][0], Theta1)
    np.testing.assert_array_equal(data["thetas"][1], Theta2)
    from scipy.io import loadmat

    unrolled = loadmat(path)["nn_params"].ravel()
    for W, expected in zip(fastbp.unpack(unrolled, sizes, order="F"), data["thetas"], strict=True):
        np.testing.assert_array_equal(W, expected)
    np.testing.assert_array_equal(fastbp.pack(data["thetas"], order="F"), unrolled)
    np.testing.assert_array_equal(fastbp.pack(data["thetas"]), data["theta"])
    assert not np.array_equal(data["theta"], unrolled)  # the two orders differ


def test_four_layer_weights(tmp_path, rng):
    sizes = (2, 3, 4, 2)
    thetas = fastbp.unpack(rng.normal(size=fastbp.n_params(sizes)), sizes)
    path = tmp_path / "deep.mat"
    savemat(path, {f"Theta{i + 1}": W for i, W in enumerate(thetas)})
    data = fastbp.load(path)
    assert data["layer_sizes"] == sizes
    assert len(data["thetas"]) == 3


@pytest.mark.parametrize(
    ("contents", "pattern"),
    [
        ({"X": np.zeros((3, 2)), "y": np.array([[1.0], [-1.0], [2.0]])}, "labels 1 … 2.*found -1"),
        ({"X": np.zeros((3, 2)), "y": np.array([[1.0], [2.5], [2.0]])}, "integer labels"),
        ({"X": np.zeros((3, 2)), "y": np.ones((3, 2))}, r"\(m, 1\) column"),
        ({"X": np.zeros((3, 2)), "y": np.array([[1.0], [2.0]])}, "3 rows but y has 2"),
        ({"X": np.zeros((2, 2)), "y": np.array([[1.0], [1.0]])}, "single class"),
        ({"Theta1": np.zeros((3, 4)), "Theta3": np.zeros((2, 4))}, "Theta2 is missing"),
        ({"Theta1": np.zeros((3, 4)), "Theta2": np.zeros((2, 5))}, "Theta2.*needs 4 columns"),
        ({"Theta1": np.zeros((3, 4)), "y": np.array([[4.0]])}, "labels 1 … 3.*found 4"),
        (
            {"Theta1": np.zeros((3, 4)), "X": np.zeros((2, 5))},
            "X has 5 columns but the weights take 3",
        ),
        ({"features": np.zeros((3, 2))}, "no X, y or Theta1.*features"),
    ],
)
def test_malformed_mat_files(tmp_path, contents, pattern):
    path = tmp_path / "bad.mat"
    savemat(path, contents)
    with pytest.raises(ValueError, match=pattern) as info:
        fastbp.load(path)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize("content", [b"", b"not a mat file at all " * 20])
def test_unreadable_mat_files(tmp_path, content):
    path = tmp_path / "broken.mat"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable MATLAB"):
        fastbp.load(path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.mat"):
        fastbp.load(tmp_path / "absent.mat")
    (tmp_path / "data.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"unknown file type '\.txt'.*\.mat, \.npz, \.csv"):
        fastbp.load(tmp_path / "data.txt")


# ----------------------------------------------------------------------------- .npz


def test_npz_data_with_any_labels(tmp_path, rng):
    X = rng.uniform(size=(5, 2))
    np.savez(tmp_path / "d.npz", X=X, y=np.array(["b", "a", "c", "a", "b"]))
    data = fastbp.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(data["classes"], ["a", "b", "c"])
    np.testing.assert_array_equal(data["y"], [1, 0, 2, 0, 1])
    np.savez(tmp_path / "t.npz", X=X, y=rng.uniform(size=(5, 3)))
    targets = fastbp.load(tmp_path / "t.npz")
    assert targets["y"].shape == (5, 3)
    assert "classes" not in targets


def test_model_round_trip(tmp_path, rng):
    X = rng.uniform(size=(60, 3))
    labels = np.array([3, 5, 9])[np.arange(60) % 3]
    model = fastbp.fit(X, labels, (4,), lam=0.5, maxiter=20, seed=0)
    path = fastbp.save(tmp_path / "model.npz", model)
    loaded = fastbp.load(path)
    assert loaded["theta"].tobytes() == model.theta.tobytes()
    assert loaded["layer_sizes"] == (3, 4, 3)
    np.testing.assert_array_equal(loaded["classes"], [3, 5, 9])
    assert loaded["lam"] == 0.5
    predicted = loaded["classes"][fastbp.predict(loaded["theta"], X, loaded["layer_sizes"])]
    np.testing.assert_array_equal(predicted, model.predict(X))
    # a dict such as load's result saves too; the course's weights become a model
    fastbp.save(tmp_path / "again.npz", loaded)
    again = fastbp.load(tmp_path / "again.npz")
    assert again["theta"].tobytes() == model.theta.tobytes()


def test_model_round_trip_keeps_activations_and_output(tmp_path, rng):
    X = rng.uniform(size=(60, 3))
    labels = np.array([3, 5, 9])[np.arange(60) % 3]
    network = {"activation": ["relu", "tanh"], "output": "softmax"}
    model = fastbp.fit(X, labels, (4, 5), lam=0.5, maxiter=20, seed=0, **network)
    loaded = fastbp.load(fastbp.save(tmp_path / "model.npz", model))
    assert loaded["activation"] == ("relu", "tanh")
    assert loaded["output"] == "softmax"
    assert loaded["y_ndim"] == 1
    predicted = fastbp.predict(
        loaded["theta"], X, loaded["layer_sizes"], activation=loaded["activation"], output="softmax"
    )
    np.testing.assert_array_equal(loaded["classes"][predicted], model.predict(X))
    fastbp.save(tmp_path / "again.npz", loaded)  # load's dict saves them too
    again = fastbp.load(tmp_path / "again.npz")
    assert (again["activation"], again["output"]) == (("relu", "tanh"), "softmax")


def test_regressor_round_trip(tmp_path, rng):
    X = rng.uniform(size=(80, 2))
    y = X @ [1.0, -1.0]
    model = fastbp.fit(X, y, (3,), activation="identity", output="identity", maxiter=10, seed=0)
    loaded = fastbp.load(fastbp.save(tmp_path / "r.npz", model))
    assert "classes" not in loaded
    assert (loaded["activation"], loaded["output"], loaded["y_ndim"]) == (
        ("identity",),
        "identity",
        1,
    )
    values = fastbp.predict(loaded["theta"], X, (2, 3, 1), activation="identity", output="identity")
    np.testing.assert_array_equal(values[:, 0], model.predict(X))


def test_models_saved_before_activations_were_recorded_are_sigmoid(tmp_path, rng):
    sizes = (3, 4, 2, 3)
    theta = rng.normal(size=fastbp.n_params(sizes))
    np.savez(tmp_path / "old.npz", theta=theta, layer_sizes=np.array(sizes), lam=np.array(1.0))
    old = fastbp.load(tmp_path / "old.npz")
    assert old["activation"] == ("sigmoid", "sigmoid")
    assert old["output"] == "sigmoid"
    assert "y_ndim" not in old
    course = fastbp.load(
        course_mat(tmp_path / "w.mat", Theta1=np.zeros((4, 4)), Theta2=np.zeros((3, 5)))
    )
    assert (course["activation"], course["output"]) == (("sigmoid",), "sigmoid")
    fastbp.save(tmp_path / "plain.npz", {"theta": theta, "layer_sizes": sizes})
    with np.load(tmp_path / "plain.npz") as saved:
        assert saved["activation"].tolist() == ["sigmoid", "sigmoid"]
        assert str(saved["output"]) == "sigmoid"


def test_save_string_classes_and_no_lam(tmp_path):
    theta = np.zeros(fastbp.n_params((2, 1)))
    fastbp.save(
        tmp_path / "m.npz", {"theta": theta, "layer_sizes": (2, 1), "classes": ["no", "yes"]}
    )
    loaded = fastbp.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded["classes"], ["no", "yes"])
    assert "lam" not in loaded


@pytest.mark.parametrize(
    ("path", "model", "error", "pattern"),
    [
        ("m.txt", {"theta": np.zeros(3), "layer_sizes": (2, 1)}, ValueError, r"\.npz"),
        ("m.npz", {"theta": np.zeros(3)}, ValueError, "layer_sizes"),
        ("m.npz", {"theta": np.zeros(4), "layer_sizes": (2, 1)}, ValueError, "theta.*length"),
        ("m.npz", np.zeros(3), TypeError, "FitResult or a mapping"),
        (
            "m.npz",
            {"theta": np.zeros(3), "layer_sizes": (2, 1), "lam": -1.0},
            ValueError,
            "lam",
        ),
        (
            "m.npz",
            {"theta": np.zeros(13), "layer_sizes": (2, 3, 1), "activation": "swish"},
            ValueError,
            "activation must be one of",
        ),
        (
            "m.npz",
            {"theta": np.zeros(13), "layer_sizes": (2, 3, 1), "activation": ["relu"] * 2},
            ValueError,
            "activation has 2 names",
        ),
        (
            "m.npz",
            {"theta": np.zeros(3), "layer_sizes": (2, 1), "output": "softmax"},
            ValueError,
            "softmax.*2 output units",
        ),
        (
            "m.npz",
            {"theta": np.zeros(3), "layer_sizes": (2, 1), "output": "identity", "classes": [0, 1]},
            ValueError,
            "regressor: it has no classes",
        ),
        (
            "m.npz",
            {"theta": np.zeros(3), "layer_sizes": (2, 1), "y_ndim": 3},
            ValueError,
            "y_ndim must be 1 or 2",
        ),
    ],
)
def test_save_rejects_bad_models(tmp_path, path, model, error, pattern):
    with pytest.raises(error, match=pattern):
        fastbp.save(tmp_path / path, model)
    assert not (tmp_path / path).exists()


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"theta": np.zeros(3)}, "both theta and layer_sizes"),
        ({"theta": np.zeros(4), "layer_sizes": np.array([2, 1])}, "theta has length 4"),
        ({"theta": np.zeros(3), "layer_sizes": np.array([2.0, 1.0])}, "layer_sizes.*integer"),
        (
            {"theta": np.zeros(3), "layer_sizes": np.array([2, 1]), "classes": np.arange(3)},
            "3 classes do not match K = 1",
        ),
        ({"X": np.zeros((3, 2)), "y": np.zeros(2, int)}, "3 rows but y has 2"),
        ({"X": np.zeros(3)}, r"X must be a real \(m, n\) matrix"),
        ({"weights": np.zeros(3)}, "no X, y or model.*weights"),
        ({"X": np.zeros((2, 2)), "y": np.array([0.5, 1.5])}, "non-integer"),
        (
            {"theta": np.zeros(3), "layer_sizes": np.array([2, 1]), "activation": np.zeros(0)},
            "activation must be a 1-D array of names",
        ),
        (
            {"theta": np.zeros(3), "layer_sizes": np.array([2, 1]), "output": np.array("probit")},
            "output must be one of",
        ),
        (
            {"theta": np.zeros(9), "layer_sizes": np.array([2, 2, 1]), "activation": ["a", "b"]},
            "activation has 2 names",
        ),
        (
            {
                "theta": np.zeros(3),
                "layer_sizes": np.array([2, 1]),
                "output": np.array("identity"),
                "classes": np.arange(2),
            },
            "regressor: it has no classes",
        ),
        (
            {
                "theta": np.zeros(6),
                "layer_sizes": np.array([2, 2]),
                "output": np.array("identity"),
                "y_ndim": np.array(1),
            },
            "y_ndim 1 needs one output unit",
        ),
        (
            {"theta": np.zeros(3), "layer_sizes": np.array([2, 1]), "y_ndim": np.array(1.0)},
            "y_ndim must be an integer",
        ),
    ],
)
def test_malformed_npz_files(tmp_path, arrays, pattern):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=pattern):
        fastbp.load(path)


def test_unreadable_npz_files(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match=r"not a \.npz file"):
        fastbp.load(tmp_path / "text.npz")
    np.savez(tmp_path / "objects.npz", X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        fastbp.load(tmp_path / "objects.npz")


# ----------------------------------------------------------------------------- .csv


def test_csv_with_header_and_string_labels(tmp_path):
    path = tmp_path / "iris.csv"
    path.write_text("a,b,species\n1,2,setosa\n3,4.5,virginica\n-1,0,setosa\n")
    data = fastbp.load(path)
    np.testing.assert_array_equal(data["X"], [[1, 2], [3, 4.5], [-1, 0]])
    np.testing.assert_array_equal(data["classes"], ["setosa", "virginica"])
    np.testing.assert_array_equal(data["y"], [0, 1, 0])
    with pytest.raises(ValueError, match="line 2, species: 'setosa' is not a finite number"):
        fastbp.load(path, label="a")  # the species column is then a feature
    numeric = tmp_path / "numeric.csv"
    numeric.write_text("a,b,c\n1,2,5\n3,4.5,6\n-1,0,7\n")
    by_name = fastbp.load(numeric, label="a")
    np.testing.assert_array_equal(by_name["classes"], [-1, 1, 3])
    assert by_name["classes"].dtype == np.int64
    np.testing.assert_array_equal(by_name["X"], [[2, 5], [4.5, 6], [0, 7]])


def test_csv_without_header_label_by_index_or_none(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("7,0.5,2\n3,1,0\n7,0,2\n")
    with pytest.raises(ValueError, match=r"the first column .* and the last .* both look like"):
        fastbp.load(path)  # either could be the labels: no guess
    last = fastbp.load(path, label=-1)
    np.testing.assert_array_equal(last["X"], [[7, 0.5], [3, 1], [7, 0]])
    np.testing.assert_array_equal(last["classes"], [0, 2])
    np.testing.assert_array_equal(last["y"], [1, 0, 1])
    first = fastbp.load(path, label=0)
    np.testing.assert_array_equal(first["classes"], [3, 7])
    np.testing.assert_array_equal(first["y"], [1, 0, 1])
    np.testing.assert_array_equal(first["X"], [[0.5, 2], [1, 0], [0, 2]])
    features = fastbp.load(path, label=None)
    assert features["X"].shape == (3, 3)
    assert "y" not in features


@pytest.mark.parametrize(
    ("text", "label", "pattern"),
    [
        ("", -1, "empty"),
        ("a,b\n", -1, "header but no examples"),
        ("1,2,0\n3,4\n", -1, "line 2 has 2 fields, expected 3"),
        ("a,b,y\n1,x,0\n", -1, "line 2, b: 'x' is not a finite number"),
        ("1,nan,0\n", -1, "line 1, column 2: 'nan'"),
        ("1,2,0.5\n3,4,1\n", -1, "not integers"),
        ("1,2,0\n", "y", "no header row"),
        ("a,y\n1,0\n", "z", "no column named 'z'; the columns are a, y"),
        ("1,2,0\n", 5, "out of range"),
        ("1\n2\n", -1, "no feature columns"),
    ],
)
def test_malformed_csv_files(tmp_path, text, label, pattern):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern):
        fastbp.load(path, label=label)


def test_csv_rejects_a_bad_label_argument(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("1,2\n")
    with pytest.raises(TypeError, match="label"):
        fastbp.load(path, label=1.5)


def test_csv_sample_weight_column(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("a,weight,b,kind\n1,2,5,x\n3,0.5,6,y\n-1,0,7,x\n")
    data = fastbp.load(path, sample_weight="weight")
    np.testing.assert_array_equal(data["X"], [[1, 5], [3, 6], [-1, 7]])
    np.testing.assert_array_equal(data["sample_weight"], [2, 0.5, 0])
    np.testing.assert_array_equal(data["classes"], ["x", "y"])
    assert data["sample_weight_column"] == "column 2 'weight', --sample-weight 1"
    by_index = fastbp.load(path, sample_weight=1, label=-1)
    np.testing.assert_array_equal(by_index["sample_weight"], data["sample_weight"])
    np.testing.assert_array_equal(by_index["X"], data["X"])
    # without a header: the label rule looks at the first and last of the other columns
    plain = tmp_path / "plain.csv"
    plain.write_text("0.5,2.5,1,3\n0.25,1.5,0,1\n0.75,0.5,1,2\n")
    last = fastbp.load(plain, sample_weight=-1)
    assert last["label_column"] == "column 3, --label 2"
    np.testing.assert_array_equal(last["y"], [1, 0, 1])
    np.testing.assert_array_equal(last["sample_weight"], [3, 1, 2])
    np.testing.assert_array_equal(last["X"], [[0.5, 2.5], [0.25, 1.5], [0.75, 0.5]])
    # a model's input count, weight column left out, says the file has no label column
    features = fastbp.load(plain, sample_weight=-1, n_features=3)
    assert "y" not in features
    assert features["X"].shape == (3, 3)


@pytest.mark.parametrize(
    ("text", "arguments", "error", "pattern"),
    [
        ("a,w,y\n1,-2,0\n2,1,1\n", {"sample_weight": "w"}, ValueError, "weight.*>= 0"),
        ("a,w,y\n1,0,0\n2,0,1\n", {"sample_weight": "w"}, ValueError, "all zeros"),
        ("a,w,y\n1,x,0\n2,1,1\n", {"sample_weight": "w"}, ValueError, "line 2, w: 'x'"),
        ("a,w,y\n1,1,0\n", {"sample_weight": "v"}, ValueError, "no column named 'v'"),
        ("1,1,0\n", {"sample_weight": 3}, ValueError, "sample_weight column 3 is out of range"),
        ("1,1,0\n", {"sample_weight": 1.0}, TypeError, "sample_weight must be a column name"),
        ("a,w,y\n1,1,0\n", {"sample_weight": 1, "label": 1}, ValueError, "label column and the"),
        ("w,a,b\n1,0.5,7\n", {"sample_weight": 0}, ValueError, r"first column \(column 2 'a', "),
    ],
)
def test_csv_bad_sample_weight_column(tmp_path, text, arguments, error, pattern):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(error, match=pattern):
        fastbp.load(path, **arguments)


def test_regression_targets(tmp_path, rng):
    path = tmp_path / "prices.csv"
    path.write_text("size,rooms,price\n50,2,120.5\n80,3,199\n30,1,75.25\n")
    data = fastbp.load(path, label="price", regression=True)
    np.testing.assert_array_equal(data["y"], [120.5, 199, 75.25])
    assert data["y"].dtype == np.float64
    assert "classes" not in data
    with pytest.raises(ValueError, match=r"looks like a feature.*--output identity"):
        fastbp.load(path, label="price")
    with pytest.raises(ValueError, match=r"regression targets is not guessed.*--label"):
        fastbp.load(path, regression=True)
    named = tmp_path / "named.csv"
    named.write_text("size,target\n50,1.5\n80,2\n")
    np.testing.assert_array_equal(fastbp.load(named, regression=True)["y"], [1.5, 2])
    X = rng.uniform(size=(4, 2))
    np.savez(tmp_path / "d.npz", X=X, y=np.array([0.5, 1, 2, 3]))
    np.testing.assert_array_equal(
        fastbp.load(tmp_path / "d.npz", regression=True)["y"], [0.5, 1, 2, 3]
    )
    savemat(tmp_path / "d.mat", {"X": X, "y": np.array([[0.5], [1], [2], [-3]])})
    mat = fastbp.load(tmp_path / "d.mat", regression=True)
    np.testing.assert_array_equal(mat["y"], [0.5, 1, 2, -3])
    assert "classes" not in mat
    with pytest.raises(ValueError, match=r"d\.npz: sample_weight names a \.csv column"):
        fastbp.load(tmp_path / "d.npz", sample_weight="w")
