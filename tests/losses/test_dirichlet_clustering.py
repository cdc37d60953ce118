import math

import pytest
import torch

from usconvirt.losses.dirichlet_clustering import (
    DirichletClusteringLoss,
    assignment_entropy,
    consistency_loss,
    dirichlet_prior_loss,
    mean_log_assignment,
)


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    a = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    loss = DirichletClusteringLoss(alpha=1.7, consistency_weight=1.0, prior_weight=0.5, entropy_weight=0.3)
    assert torch.autograd.gradcheck(lambda x, y: loss(x, y)["loss"], (a, b))


def test_collapsed_assignments_cost_more_than_balanced():
    k, n = 4, 8
    collapsed = torch.full((n, k), -10.0)
    collapsed[:, 0] = 10.0
    balanced = torch.full((n, k), -10.0)
    balanced[torch.arange(n), torch.arange(n) % k] = 10.0
    collapsed_prior = dirichlet_prior_loss(mean_log_assignment(collapsed), alpha=2.0)
    balanced_prior = dirichlet_prior_loss(mean_log_assignment(balanced), alpha=2.0)
    assert collapsed_prior > balanced_prior + 10
    # both are perfectly consistent, so the prior alone decides
    same = consistency_loss(balanced, balanced).item()
    assert consistency_loss(collapsed, collapsed).item() == pytest.approx(same)


def test_prior_is_dirichlet_negative_log_density():
    pbar = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    alpha = 3.0
    expected = -torch.distributions.Dirichlet(torch.full((4,), alpha, dtype=torch.float64)).log_prob(pbar)
    assert dirichlet_prior_loss(pbar.log(), alpha).item() == pytest.approx(expected.item())


def test_consistency_rewards_confident_agreement():
    agree = torch.tensor([[8.0, -8.0]])
    disagree = torch.tensor([[-8.0, 8.0]])
    unsure = torch.zeros(1, 2)
    assert consistency_loss(agree, agree) < consistency_loss(unsure, unsure)
    assert consistency_loss(unsure, unsure) < consistency_loss(agree, disagree)
    assert consistency_loss(unsure, unsure).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("scale", [50.0, 1e3, 1e4])
def test_stable_when_probabilities_are_near_zero(scale):
    hot = torch.full((6, 5), -scale)
    hot[:, 0] = scale  # every frame in cluster 0: other clusters have probability ~exp(-2 * scale)
    a = hot.clone().requires_grad_(True)
    b = (-hot).clone().requires_grad_(True)  # the other view is certain of different clusters
    terms = DirichletClusteringLoss(entropy_weight=1.0)(a, b)
    terms["loss"].backward()
    for value in terms.values():
        assert torch.isfinite(value)
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    assert torch.isfinite(assignment_entropy(hot))


def test_rejects_mismatched_views():
    with pytest.raises(ValueError, match="same shape"):
        DirichletClusteringLoss()(torch.zeros(4, 3), torch.zeros(4, 2))
