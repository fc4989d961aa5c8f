"""Models: propagation against dense references, gradients, shapes, determinism."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.models import GMF, MF, MODEL_NAMES, NGCF, LightGCN, build_model


def make_data(num_users: int = 7, num_items: int = 9, density: float = 0.3, seed: int = 0) -> InteractionData:
    rng = np.random.default_rng(seed)
    mask = rng.random((num_users, num_items)) < density
    mask[0, :] = False  # an isolated user
    mask[1:, 0] = False  # an isolated item
    mask[1, 1] = True
    u, i = np.nonzero(mask)
    return InteractionData("toy", num_users, num_items, CSR.from_pairs(u, i, num_users),
                           CSR.empty(num_users), CSR.empty(num_users))


def dense_norm_adj(data: InteractionData) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of the bipartite graph, built densely from the pairs (0 for isolated)."""
    U, N = data.num_users, data.num_items
    a = torch.zeros(U + N, U + N, dtype=torch.float64)
    u, i = data.train.pairs()
    a[u, U + i] = 1.0
    a[U + i, u] = 1.0
    deg = a.sum(1)
    d = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    return d[:, None] * a * d[None, :]


def ego64(model) -> torch.Tensor:
    return torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach().double()


def test_lightgcn_equals_dense_reference():
    data = make_data()
    model = LightGCN(data, dim=5, num_layers=3, seed=3)
    a = dense_norm_adj(data)
    layers = [ego64(model)]
    for _ in range(3):
        layers.append(a @ layers[-1])
    expected = torch.stack(layers).mean(0)
    users, items = model.propagate()
    torch.testing.assert_close(users.double(), expected[:7], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(items.double(), expected[7:], rtol=1e-5, atol=1e-6)
    lu, li = model.layer_embeddings()
    assert len(lu) == len(li) == 4
    for k in range(4):
        torch.testing.assert_close(torch.cat([lu[k], li[k]]).double(), layers[k], rtol=1e-5, atol=1e-6)
    # the isolated user keeps only its ego embedding / (K+1)
    torch.testing.assert_close(users[0], model.user_embedding.weight[0] / 4)


def test_ngcf_layer_equals_dense_formula():
    data = make_data()
    model = NGCF(data, dim=4, num_layers=2, seed=1, message_dropout=0.0, bias=True)
    with torch.no_grad():
        for lin in [*model.w1, *model.w2]:
            lin.bias.normal_(generator=torch.Generator().manual_seed(5))
    a = dense_norm_adj(data)
    e = ego64(model)
    layers = [e]
    for l in range(2):
        w1 = model.w1[l].weight.detach().double()
        b1 = model.w1[l].bias.detach().double()
        w2 = model.w2[l].weight.detach().double()
        b2 = model.w2[l].bias.detach().double()
        s = a @ e
        # paper eq. 7: LeakyReLU((L + I) E W1 + (L E) ⊙ E W2), row-vector form
        e = F.leaky_relu((s + e) @ w1.T + b1 + (s * e) @ w2.T + b2, 0.2)
        layers.append(e / e.norm(dim=1, keepdim=True).clamp_min(1e-12))
    expected = torch.cat(layers, dim=1)
    users, items = model.propagate()
    assert model.final_dim == 12 and users.shape == (7, 12) and items.shape == (9, 12)
    torch.testing.assert_close(torch.cat([users, items]).double(), expected, rtol=1e-4, atol=1e-5)
    mean_model = NGCF(data, dim=4, num_layers=2, seed=1, message_dropout=0.0, pooling="mean")
    mu, _ = mean_model.propagate()
    assert mean_model.final_dim == 4 and mu.shape == (7, 4)


def test_ngcf_message_dropout_only_in_training_and_seeded():
    data = make_data()
    a, b = (NGCF(data, dim=4, num_layers=2, seed=2, message_dropout=0.5) for _ in range(2))
    ta, tb = a.propagate()[1], b.propagate()[1]
    torch.testing.assert_close(ta, tb)  # same seed, same dropout masks
    a.eval()
    ea = a.propagate()[1]
    assert not torch.allclose(ta, ea)
    ref = NGCF(data, dim=4, num_layers=2, seed=2, message_dropout=0.0)
    torch.testing.assert_close(ea, ref.propagate()[1])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_pool_and_gradients(name):
    data = make_data()
    model = build_model(name, data, dim=6, seed=0, num_layers=2)
    users, items = model.propagate()
    assert users.shape == (7, model.final_dim) and items.shape == (9, model.final_dim)
    lu, li = model.layer_embeddings()
    assert len(lu) == len(li) == (3 if model.is_graph_model else 1)
    assert all(t.shape == (7, 6) for t in lu) and all(t.shape == (9, 6) for t in li)
    if not isinstance(model, NGCF) or model.message_dropout == 0.0:
        torch.testing.assert_close(model.pool(lu), users)
    model.eval()
    users, items = model.propagate()
    torch.testing.assert_close(model.pool(model.layer_embeddings()[1]), items)
    b_users, b_items = torch.tensor([1, 2]), torch.tensor([1, 3])
    (users[b_users] * items[b_items]).sum().backward()
    ug, ig = model.user_embedding.weight.grad, model.item_embedding.weight.grad
    assert ug is not None and ig is not None
    assert ug[1].abs().sum() > 0 and ig[1].abs().sum() > 0
    if model.is_graph_model:
        # propagation spreads gradient beyond the batch's own rows
        touched = (ig.abs().sum(1) > 0).nonzero().flatten().tolist()
        assert set(touched) - {1, 3}
    else:
        assert torch.count_nonzero(ug.abs().sum(1)) == 2
    assert ug[0].abs().sum() == 0  # isolated user, not in the batch


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_deterministic_by_seed(name):
    data = make_data()
    a = build_model(name, data, dim=4, seed=11)
    b = build_model(name, data, dim=4, seed=11)
    c = build_model(name, data, dim=4, seed=12)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert "norm_adj" not in sa
    for key in sa:
        if isinstance(sa[key], torch.Tensor):
            torch.testing.assert_close(sa[key], sb[key])
        else:  # NGCF's dropout RNG extra state
            assert sa[key]["dropout_seed"] == sb[key]["dropout_seed"] != sc[key]["dropout_seed"]
    assert not torch.equal(sa["user_embedding.weight"], sc["user_embedding.weight"])
    g = torch.Generator().manual_seed(11)
    d = build_model(name, data, dim=4, generator=g)
    assert not torch.equal(d.state_dict()["item_embedding.weight"], sc["item_embedding.weight"])
    torch.testing.assert_close(d.state_dict()["user_embedding.weight"],
                               build_model(name, data, dim=4, generator=torch.Generator().manual_seed(11))
                               .state_dict()["user_embedding.weight"])


def test_init_schemes():
    data = make_data(num_users=300, num_items=200, density=0.05)
    w = LightGCN(data, dim=64, seed=0).user_embedding.weight.detach()
    assert abs(float(w.std()) - 0.1) < 0.01
    x = LightGCN(data, dim=64, seed=0, init="xavier").user_embedding.weight.detach()
    bound = (6.0 / (300 + 64)) ** 0.5
    assert float(x.abs().max()) <= bound and float(x.abs().max()) > 0.9 * bound
    with pytest.raises(ValueError, match="init must be one of"):
        MF(data, 4, init="uniform")


def test_gmf_scores_and_l2():
    data = make_data()
    model = GMF(data, dim=3, seed=0)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([1.0, -2.0, 0.5]))
    users, items = model.propagate()
    p, q, w = model.user_embedding.weight, model.item_embedding.weight, model.weight
    torch.testing.assert_close(users[2] @ items[4], (w * p[2] * q[4]).sum())
    mf = MF(data, dim=3, seed=0)
    u, i, j = torch.tensor([1, 2]), torch.tensor([3, 4]), torch.tensor([[5, 6], [7, 8]])
    expected = (mf.user_embedding.weight[u].pow(2).sum() + mf.item_embedding.weight[i].pow(2).sum()
                + mf.item_embedding.weight[j].pow(2).sum()) / 2
    torch.testing.assert_close(mf.l2_regulariser(u, i, j), expected)


def test_build_model_errors():
    data = make_data()
    with pytest.raises(ValueError, match="unknown model 'bpr'"):
        build_model("bpr", data)
    with pytest.raises(TypeError):
        build_model("lightgcn", data, pooling="concat")
    with pytest.raises(ValueError, match="pooling"):
        build_model("ngcf", data, pooling="sum")
    with pytest.raises(ValueError, match="dim must be >= 1"):
        build_model("mf", data, dim=0)
    assert isinstance(build_model("LightGCN", data, num_layers=1), LightGCN)
    assert build_model("mf", data, num_layers=3).final_dim == 64


@pytest.mark.cuda
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_cuda_matches_cpu(name):
    data = make_data()
    cpu = build_model(name, data, dim=4, seed=5).eval()
    gpu = build_model(name, data, dim=4, seed=5, device="cuda").eval()
    assert gpu.adj_values.is_cuda if gpu.is_graph_model else True
    for a, b in zip(cpu.propagate(), gpu.propagate()):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-5, atol=1e-6)


def test_ngcf_dropout_stream_restored_from_state_dict():
    data = make_data()
    a = NGCF(data, dim=4, num_layers=2, seed=0, message_dropout=0.3)
    a.propagate()
    state = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in a.state_dict().items()}
    second = a.propagate()[0]
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    b = NGCF(data, dim=4, num_layers=2, seed=99, message_dropout=0.3)
    b.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(b.propagate()[0], second)
    fresh = NGCF(data, dim=4, num_layers=2, seed=0, message_dropout=0.3)
    assert not torch.allclose(fresh.propagate()[0], second)  # the stream moved on


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_ops_propagation_equals_reference_path(name):
    """The operators' path and the torch.sparse.mm path: same tables, same gradients."""
    data = make_data(30, 40, density=0.2)
    kw = {"message_dropout": 0.0} if name == "ngcf" else {}
    models = {p: build_model(name, data, dim=8, seed=4, propagation=p, **kw)
              for p in ("ops", "reference")}
    assert hasattr(models["ops"], "adj_indptr") and not hasattr(models["ops"], "norm_adj")
    weights = torch.randn(30 + 40, models["ops"].final_dim, generator=torch.Generator().manual_seed(0))
    grads = {}
    for p, model in models.items():
        users, items = model.propagate()
        (torch.cat([users, items]) * weights).sum().backward()
        grads[p] = (torch.cat([users, items]).detach(),
                    [q.grad.clone() for q in model.parameters()])
    torch.testing.assert_close(grads["ops"][0], grads["reference"][0], rtol=1e-5, atol=1e-6)
    for a, b in zip(grads["ops"][1], grads["reference"][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_lightgcn_fused_propagation_equals_pooled_layers_bitwise():
    """graph_propagate and pool(layer_embeddings()) (MixGCF's path) give the same bits, and the
    CSR of the normalised adjacency is symmetric (the backward relies on it)."""
    from autosample_ext import ops

    data = make_data(30, 40, density=0.2)
    model = LightGCN(data, dim=16, num_layers=3, seed=2)
    assert ops.csr_is_symmetric(model.adj_indptr, model.adj_indices, model.adj_values)
    users, items = model.propagate()
    lu, li = model.layer_embeddings()
    assert torch.equal(model.pool(lu), users) and torch.equal(model.pool(li), items)
    with pytest.raises(ValueError, match="propagation must be one of"):
        LightGCN(data, propagation="dense")
