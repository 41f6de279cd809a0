"""The custom-op, RBM and DBN examples, in reduced form, with floors a broken run cannot reach."""
import importlib.util
import pathlib

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_op_example_checks_its_gradient_and_learns():
    assert load("custom_op").main(epochs=1, samples=4000, verbose=0) > 0.8


def test_mnist_rbm_reduced_learns_and_draws(tmp_path):
    history = load("mnist_rbm").main(epochs=2, samples=3000, hidden=64, gibbs_steps=50,
                                     out=tmp_path, verbose=0)
    errors = history.history["reconstruction_error"]
    assert errors[1] < errors[0] < 60
    assert {p.name for p in tmp_path.iterdir()} == {"filters.png", "samples.png", "rbm.h5"}


def test_mnist_dbn_reduced_fine_tunes_and_a_saved_dbn_gives_the_same_result(tmp_path):
    example = load("mnist_dbn")
    settings = dict(layers=(128, 128), epochs=6, samples=3000, validation=500, batch_size=20,
                    verbose=0)
    accuracy = example.main(pretrain_epochs=1, save=tmp_path / "dbn.h5", **settings)
    assert accuracy > 0.85
    assert example.main(load=tmp_path / "dbn.h5", **settings) == accuracy
