import copy

import pytest
import torch
from helpers import make_views

from mrdd.data import Batch, BatchLoader, MultiViewData
from mrdd.models import MRDD, ConsistencyModel, estimator_loss
from mrdd.train import ConsistencyStage, DisentangleStage

CPU = torch.device("cpu")


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_stage1_loss_falls_on_tiny_data(tiny_config):
    torch.manual_seed(0)
    views, _ = make_views(16)
    model = ConsistencyModel([tuple(v.shape[1:]) for v in views], tiny_config.model)
    stage = ConsistencyStage(model, tiny_config, CPU)
    model.train()
    losses = [stage.step(Batch.of(views))["loss"].item() for _ in range(30)]
    assert losses[-1] < 0.8 * losses[0]


def test_stage2_never_changes_the_frozen_consistency_model(tiny_config):
    torch.manual_seed(0)
    views, _ = make_views(16)
    model = MRDD([tuple(v.shape[1:]) for v in views], tiny_config.model)
    before = _state(model.consistency)
    stage = DisentangleStage(model, tiny_config, CPU)
    model.train()
    for _ in range(3):
        stage.step(Batch.of(views))
    after = model.consistency.state_dict()
    assert before.keys() == after.keys()
    for k in before:  # weights *and* BatchNorm buffers, bit for bit
        assert torch.equal(before[k], after[k]), k
    assert not model.consistency.training


def test_stage2_updates_each_part_by_its_own_loss_only(tiny_config):
    """The estimator step must not touch the view models and vice versa."""
    torch.manual_seed(0)
    views, _ = make_views(16)
    model = MRDD([tuple(v.shape[1:]) for v in views], tiny_config.model)
    stage = DisentangleStage(model, tiny_config, CPU)
    model.train()
    view_opt, estimator_opt = stage.optimizers
    snapshots = {}

    def snapshot(name):
        def hook(*_):
            snapshots[name] = (_state(model.specific), _state(model.club))

        return hook

    estimator_opt.register_step_pre_hook(snapshot("before_estimator"))
    estimator_opt.register_step_post_hook(snapshot("after_estimator"))
    club_grads = {}
    estimator_opt.register_step_post_hook(
        lambda *_: club_grads.update({n: p.grad.clone() for n, p in model.club.named_parameters()})
    )
    view_opt.register_step_pre_hook(snapshot("before_view"))
    view_opt.register_step_post_hook(snapshot("after_view"))
    stage.step(Batch.of(views))

    spec_a, club_a = snapshots["before_estimator"]
    spec_b, club_b = snapshots["after_estimator"]
    assert all(torch.equal(spec_a[k], spec_b[k]) for k in spec_a)  # view models untouched
    assert any(not torch.equal(club_a[k], club_b[k]) for k in club_a)  # estimator moved
    spec_c, club_c = snapshots["before_view"]
    spec_d, club_d = snapshots["after_view"]
    assert all(torch.equal(club_c[k], club_d[k]) for k in club_c)  # θ fixed in the view step
    assert any(not torch.equal(spec_c[k], spec_d[k]) for k in spec_c)
    # the view-model backward adds nothing to the estimator's gradients
    assert all(torch.equal(p.grad, club_grads[n]) for n, p in model.club.named_parameters())


def test_estimator_loss_gradient_does_not_reach_the_view_models(tiny_config):
    torch.manual_seed(0)
    views, _ = make_views(8)
    model = MRDD([tuple(v.shape[1:]) for v in views], tiny_config.model).train()
    c = model.consistent_code(views)
    outputs = model.specific(views, c)
    weights = torch.ones(8, len(views))
    loss = estimator_loss(model.club([o.s.detach() for o in outputs]), c, weights)
    loss.backward()
    assert all(p.grad is None for p in model.specific.parameters())
    assert all(p.grad is not None for p in model.club.parameters())


def test_stage2_club_term_lowers_the_estimated_dependence(tiny_config):
    """With λ > 0 the view models are pushed against the estimator: a sanity check that
    the penalty's gradient has the right sign (the CLUB estimate falls under it)."""
    torch.manual_seed(0)
    views, _ = make_views(16)
    cfg = copy.deepcopy(tiny_config)
    cfg.stage2.club_weight = 50.0
    cfg.stage2.beta_s = 0.0
    model = MRDD([tuple(v.shape[1:]) for v in views], cfg.model).train()
    # a random consistency model still gives a c that s can learn to predict
    c = model.consistent_code(views)
    s0 = model.specific(views, c)[0].mu
    club = model.club[0]
    opt = torch.optim.SGD(model.specific.parameters(), lr=1e-3)
    mi_before = club.mi_upper_bound(s0, c).item()
    loss = club.mi_upper_bound(model.specific(views, c)[0].mu, c)
    loss.backward(inputs=list(model.specific.parameters()))
    opt.step()
    with torch.no_grad():
        mi_after = club.mi_upper_bound(model.specific(views, c)[0].mu, c).item()
    assert mi_after < mi_before


def _availability(n: int) -> torch.Tensor:
    """Each sample keeps a view: view 0 is missing in rows 0, 4, ..., view 1 in rows 2, 6, ..."""
    available = torch.ones(n, 2, dtype=torch.bool)
    available[0::4, 0] = False
    available[2::4, 1] = False
    return available


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing_views"])
def test_stage2_step_with_cached_codes_equals_the_step_that_encodes(tiny_config, missing):
    """cache_codes is exact: looking c up by the batch's index gives the step that runs the
    frozen encoder on the batch (with missing views: c of the present views)."""
    views, labels = make_views(16)
    data = MultiViewData(views, labels, "tiny", _availability(16) if missing else None)

    def stage(cache: bool) -> DisentangleStage:
        torch.manual_seed(0)
        model = MRDD(data.view_shapes, tiny_config.model).train()
        stage = DisentangleStage(model, tiny_config, CPU)
        if cache:
            stage.cache_codes(data, batch_size=5)  # batches that do not divide the data
        return stage

    cached, encoding = stage(cache=True), stage(cache=False)
    assert cached.codes.shape == (16, tiny_config.model.c_dim) and encoding.codes is None
    batch = next(iter(BatchLoader(data, 8, seed=3)))  # shuffled rows
    assert not torch.equal(batch.index, torch.arange(8))
    torch.manual_seed(1)
    got = cached.step(batch)
    torch.manual_seed(1)
    want = encoding.step(batch)
    torch.testing.assert_close(got, want)
    # gradients, not weights: AdamW's first step moves a weight by ±lr whatever its
    # gradient's size, so a conv bias just before a BatchNorm (gradient 0 up to rounding)
    # would differ by rounding noise alone
    for a, b in zip(cached.model.parameters(), encoding.model.parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_stage2_with_cached_codes_never_runs_the_frozen_encoder(tiny_config, monkeypatch):
    views, labels = make_views(16)
    data = MultiViewData(views, labels, "tiny")
    model = MRDD(data.view_shapes, tiny_config.model).train()
    stage = DisentangleStage(model, tiny_config, CPU)
    stage.cache_codes(data, batch_size=16)

    def encoder_called(*_):
        raise AssertionError("the frozen encoder ran although c was cached")

    monkeypatch.setattr(model, "consistent_code", encoder_called)
    batch = next(iter(BatchLoader(data, 8)))
    assert torch.isfinite(stage.step(batch)["loss"])
    stage.codes = None  # without the cache, c must be computed
    with pytest.raises(AssertionError, match="frozen encoder ran"):
        stage.step(batch)
