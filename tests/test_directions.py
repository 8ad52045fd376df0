import pytest
import torch

from latentdirs import DirectionError, DirectionSet
from latentdirs.directions import DirectionMatrix, best_cosines, orthonormality_error


@pytest.mark.parametrize("kind", ["unit", "ortho", "cayley", "linear"])
def test_parametrizations_keep_their_constraint_after_training(kind):
    torch.manual_seed(0)
    a = DirectionMatrix(12, 5, kind)
    opt = torch.optim.Adam(a.parameters(), lr=0.1)
    target = torch.randn(12, 5)
    for _ in range(20):  # move far from the initial identity
        opt.zero_grad()
        ((a.matrix() - target) ** 2).sum().backward()
        opt.step()
    m = a.matrix().detach()
    assert m.shape == (12, 5)
    if kind == "unit":
        assert torch.allclose(m.norm(dim=0), torch.ones(5), atol=1e-5)
    if kind in ("ortho", "cayley"):
        assert orthonormality_error(m) < 1e-4
    if kind == "linear":
        assert not torch.allclose(m.norm(dim=0), torch.ones(5), atol=1e-2)  # nothing holds it to unit norm


def test_trained_parametrizations_start_at_the_coordinate_axes():
    for kind in ("unit", "ortho", "cayley", "linear"):
        assert torch.allclose(DirectionMatrix(8, 3, kind).matrix().detach(), torch.eye(8)[:, :3], atol=1e-6)


def test_forward_is_shift_times_column():
    a = DirectionMatrix(6, 4, "random", seed=3)
    idx, eps = torch.tensor([0, 3, 3]), torch.tensor([2.0, -1.0, 0.5])
    out = a(idx, eps)
    assert torch.allclose(out[1], -a.matrix()[:, 3])
    assert torch.allclose(out[0], 2 * a.matrix()[:, 0])


@pytest.mark.parametrize("kind", ["ortho", "cayley", "identity", "random"])
def test_too_many_orthonormal_directions_is_a_clear_error(kind):
    with pytest.raises(DirectionError, match="at most latent_dim=4"):
        DirectionMatrix(4, 5, kind)


def test_unit_allows_more_directions_than_dimensions():
    m = DirectionMatrix(4, 9, "unit").matrix().detach()
    assert torch.allclose(m.norm(dim=0), torch.ones(9), atol=1e-5)


def test_unknown_parametrization():
    with pytest.raises(DirectionError, match="unknown parametrization 'orth'"):
        DirectionMatrix(4, 2, "orth")


def test_baselines():
    r = DirectionSet.random(10, 6, seed=1)
    assert orthonormality_error(r.matrix) < 1e-5
    assert torch.equal(r.matrix, DirectionSet.random(10, 6, seed=1).matrix)
    assert not torch.equal(r.matrix, DirectionSet.random(10, 6, seed=2).matrix)
    assert torch.equal(DirectionSet.identity(10, 6).matrix, torch.eye(10)[:, :6])


def test_save_load_round_trip(tmp_path):
    ds = DirectionSet(torch.randn(7, 3), scores=torch.tensor([0.1, 0.5, 0.2]), names=["a", "", "c"],
                      meta={"method": "ld-unit", "seed": 4, "generator": {"name": "planted"}})
    ds.save(tmp_path / "set")
    back = DirectionSet.load(tmp_path / "set")
    assert torch.equal(back.matrix, ds.matrix) and torch.equal(back.scores, ds.scores)
    assert back.names == ["a", "", "c"] and back.meta["seed"] == 4 and back.meta["generator"]["name"] == "planted"
    assert "version" in back.meta
    assert not list((tmp_path / "set").glob("*.tmp"))  # atomic writes leave no temporaries


def test_load_missing_set_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="directions.safetensors"):
        DirectionSet.load(tmp_path)


def test_sorted_top_and_shift():
    ds = DirectionSet(torch.eye(4), scores=torch.tensor([0.1, 0.9, 0.5, 0.2]))
    top = ds.top(2)
    assert torch.equal(top.matrix, torch.eye(4)[:, [1, 2]])
    assert top.meta["selected_from"] == [1, 2]
    z = torch.zeros(3, 4)
    assert torch.equal(ds.shift(z, 2, 1.5)[:, 2], torch.full((3,), 1.5))
    assert torch.equal(ds.shift(z, 0, torch.tensor([1.0, 2.0, 3.0]))[:, 0], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(ds.combine(z, {0: 1.0, 3: -2.0})[0], torch.tensor([1.0, 0, 0, -2.0]))
    with pytest.raises(DirectionError):
        ds.top(5)


def test_best_cosines():
    truth = torch.eye(5)[:, :2]
    found = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 1, -1], [0, 0, 0], [0, 0, 0]])
    cos = best_cosines(found, truth)
    assert torch.allclose(cos, torch.tensor([1.0, 2 ** -0.5]), atol=1e-6)


def test_top_with_max_cosine_skips_near_duplicates():
    e = torch.eye(4)
    near_e0 = (e[:, 0] + 0.1 * e[:, 1]) / (1 + 0.01) ** 0.5
    matrix = torch.stack([e[:, 0], near_e0, e[:, 2], e[:, 3]], dim=1)
    ds = DirectionSet(matrix, scores=torch.tensor([4.0, 3.0, 2.0, 1.0]))
    assert ds.top(2).meta["selected_from"] == [0, 1]
    assert ds.top(2, max_cosine=0.5).meta["selected_from"] == [0, 2]
    # too few distinct directions: the skipped ones fill the rest, best first
    assert ds.top(4, max_cosine=0.5).meta["selected_from"] == [0, 2, 3, 1]


def test_load_finds_the_set_inside_discover_and_demo_run_folders(tmp_path):
    found = DirectionSet.random(8, 3, seed=0)
    for inner in ("directions", "discovery/directions"):
        run = tmp_path / inner.replace("/", "_")
        found.save(run / inner)
        torch.testing.assert_close(DirectionSet.load(run).matrix, found.matrix)


def test_a_set_without_directions_or_with_nan_cannot_be_made():
    import latentdirs
    from latentdirs.generators import load_generator
    for matrix in (torch.zeros(16, 0), torch.zeros(0, 3)):
        with pytest.raises(DirectionError, match="K, latent_dim >= 1"):
            DirectionSet(matrix)
    bad = torch.randn(16, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(DirectionError, match="NaN or inf"):
        DirectionSet(bad)
    with pytest.raises(DirectionError, match="k must be 1 to 3"):
        DirectionSet.random(16, 3, seed=0).top(0)
    planted = load_generator("planted")
    with pytest.raises(DirectionError, match=r"at most latent_dim=16 directions \(and at least 1\), asked for 0"):
        latentdirs.sefa(planted, 0)
    with pytest.raises(DirectionError, match="num_directions >= 1"):
        latentdirs.ganspace(planted, 0)


def test_empty_or_out_of_range_requests_are_named_not_index_errors():
    from latentdirs import render
    from latentdirs.generators import load_generator
    from latentdirs.importance import image_change_scores
    planted, directions = load_generator("planted"), DirectionSet.random(16, 3, seed=0)
    for indices in ([], [5], [-4]):
        with pytest.raises(DirectionError, match=r"direction indices in 0\.\.2"):
            directions.select(indices)
    assert directions.select([2, -1]).num_directions == 2  # negative indices count from the end, as in Python
    for shifts in ([], [0.0, float("nan")]):
        with pytest.raises(ValueError, match="one or more finite numbers"):
            render.chart(planted, directions, 0, shifts=shifts)
    with pytest.raises(ValueError, match="at least one direction index"):
        render.overview(planted, directions, indices=[])
    with pytest.raises(ValueError, match="num_latents >= 1"):
        image_change_scores(planted, directions.matrix, num_latents=0)


def test_image_change_measures_refuse_matrices_that_are_not_directions():
    from latentdirs.generators import load_generator
    from latentdirs.importance import image_change_overlap, image_change_scores
    planted, matrix = load_generator("planted"), DirectionSet.random(16, 3, seed=0).matrix
    for bad, match in ((matrix[:, 0], r"\(16, K\) with K >= 1"), (matrix.t(), r"got shape \(3, 16\)"),
                       (matrix * float("nan"), "NaN or inf"),
                       (DirectionSet(matrix), r"pass a DirectionSet's \.matrix")):
        with pytest.raises(ValueError, match=match):
            image_change_scores(planted, bad, num_latents=2)
    with pytest.raises(ValueError, match="K >= 1"):  # was torch.stack's "non-empty TensorList"
        image_change_overlap(planted, matrix[:, :0], num_latents=2)
    with pytest.raises(ValueError, match="num_latents >= 1"):  # was a matrix of NaN
        image_change_overlap(planted, matrix, num_latents=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        image_change_scores(planted, matrix, num_latents=2, batch_size=0)


def test_nan_scores_and_names_that_are_not_strings_are_refused_before_a_save_load_refuses():
    with pytest.raises(DirectionError, match="scores hold NaN"):  # sorted first, top(1) kept it
        DirectionSet(torch.eye(3), scores=[float("nan"), 1.0, 2.0])
    for names in ("abc", [1, 2, 3]):  # "abc" passed the length check
        with pytest.raises(DirectionError, match="names must be a list of strings"):
            DirectionSet(torch.eye(3), names=names)
    assert DirectionSet(torch.eye(3), names=("a", "b", "c")).names == ["a", "b", "c"]
    with pytest.raises(DirectionError, match="whole direction indices"):  # was direction 1
        DirectionSet(torch.eye(3)).select([1.7])
    with pytest.raises(DirectionError, match="k must be 1 to 3"):  # was a slice TypeError
        DirectionSet(torch.eye(3)).top(2.5)


@pytest.mark.parametrize("d, k", [(4, 0), (0, 2), (4, -1), (4, 2.0)])
@pytest.mark.parametrize("kind", ["unit", "linear", "ortho"])
def test_a_direction_matrix_needs_whole_sizes_of_at_least_one(kind, d, k):
    # unit/linear made an empty A (or a torch error), found only when the set was made
    with pytest.raises(DirectionError, match="must be a whole number >= 1"):
        DirectionMatrix(d, k, kind)
    assert DirectionMatrix(1, 1, kind).matrix().shape == (1, 1)


def test_export_npy_onto_a_folder_is_named(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(DirectionError, match="it is a folder"):  # was an OSError naming the temporary
        DirectionSet(torch.eye(3)).export_npy(tmp_path / "d.npy")


def test_render_refuses_shifts_labels_snapshots_and_latents_that_do_not_fit():
    from latentdirs import render
    from latentdirs.generators import load_generator
    planted, directions = load_generator("planted"), DirectionSet.random(16, 3, seed=0)
    with pytest.raises(ValueError, match="2 sequences of shifts for 3 directions"):  # was an IndexError
        render.overview(planted, directions, shifts=[[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match=r"labels lack directions \[1, 2\]"):
        render.overview(planted, directions, labels=["a"])
    with pytest.raises(DirectionError, match="8-d directions"):  # was a torch shape error
        render.chart(planted, DirectionSet.random(8, 2), 0, num_latents=1)
    with pytest.raises(ValueError, match="at least one latent"):
        render.chart(planted, directions, 0, num_latents=0)
    with pytest.raises(ValueError, match="num_latents >= 2"):  # one latent has no spread: NaN shifts
        render.manifold_shifts(planted, directions, num_latents=1)
    for snapshots, index in (({0: torch.randn(16, 2)}, 2), ({0: torch.randn(8, 3)}, 0), ({0: directions.matrix}, 5)):
        with pytest.raises(ValueError, match="snapshot of step 0 .* another run"):
            render.evolution(planted, snapshots, index, shifts=[0.0])
    with pytest.raises(ValueError, match="at least one snapshot"):
        render.evolution(planted, {}, 0, shifts=[0.0])
