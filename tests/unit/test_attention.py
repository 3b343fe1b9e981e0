"""Normalized Bahdanau attention against a scalar hand computation."""

import math

import pytest
import torch

from nmt.model.attention import BahdanauAttention, _ChunkedScores

B, T, S, HQ, D, A = 3, 4, 5, 6, 7, 8
LENGTHS = [5, 3, 1]


@pytest.fixture
def setup():
    torch.manual_seed(0)
    attn = BahdanauAttention(HQ, D, A, normalize=True).double()
    with torch.no_grad():  # non-trivial g and b so that both enter the check
        attn.scale.fill_(0.7)
        attn.bias.uniform_(-0.5, 0.5)
    query = torch.randn(B, T, HQ, dtype=torch.float64)
    values = torch.randn(B, S, D, dtype=torch.float64)
    mask = torch.arange(S).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    return attn, query, values, mask


@torch.no_grad()
def _hand_attention(attn, query, values, lengths, normalize):
    """Scores element by element, softmax over the real positions only, weighted sum."""
    w_q, w_k, v = attn.query_proj.weight, attn.key_proj.weight, attn.v
    v_norm = math.sqrt(sum(float(e) ** 2 for e in v))
    contexts, weights = torch.zeros(B, T, D, dtype=torch.float64), torch.zeros(B, T, S).double()
    for b in range(B):
        for t in range(T):
            scores = []
            for s in range(lengths[b]):
                pre = w_q @ query[b, t] + w_k @ values[b, s]
                if normalize:
                    pre = pre + attn.bias
                    score = float(attn.scale) / v_norm * float(v @ torch.tanh(pre))
                else:
                    score = float(v @ torch.tanh(pre))
                scores.append(score)
            total = sum(math.exp(x) for x in scores)
            for s, score in enumerate(scores):
                weights[b, t, s] = math.exp(score) / total
                contexts[b, t] += weights[b, t, s] * values[b, s]
    return contexts, weights


@pytest.mark.parametrize("normalize", [True, False])
def test_matches_hand_computation(setup, normalize):
    attn, query, values, mask = setup
    if not normalize:
        attn = BahdanauAttention(HQ, D, A, normalize=False).double()
    context, weights = attn(query, attn.project_keys(values), values, mask)
    ref_context, ref_weights = _hand_attention(attn, query, values, LENGTHS, normalize)
    torch.testing.assert_close(weights, ref_weights)
    torch.testing.assert_close(context, ref_context)


def test_weights_zero_on_padding_and_sum_to_one(setup):
    attn, query, values, mask = setup
    _, weights = attn(query, attn.project_keys(values), values, mask)
    assert torch.all(weights.masked_select(~mask.unsqueeze(1).expand_as(weights)) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, T, dtype=torch.float64))
    assert torch.all(weights.masked_select(mask.unsqueeze(1).expand_as(weights)) > 0)


def test_single_step_query_equals_batched_query(setup):
    attn, query, values, mask = setup
    keys = attn.project_keys(values)
    context, weights = attn(query, keys, values, mask)
    for t in range(T):
        ctx_t, w_t = attn(query[:, t], keys, values, mask)
        assert ctx_t.shape == (B, D) and w_t.shape == (B, S)
        torch.testing.assert_close(ctx_t, context[:, t])
        torch.testing.assert_close(w_t, weights[:, t])


def test_project_keys_is_affine_map_of_encoder_outputs(setup):
    attn, _, values, _ = setup
    expected = values @ attn.key_proj.weight.T + attn.bias
    torch.testing.assert_close(attn.project_keys(values), expected)


def test_normalized_score_ignores_the_norm_of_v(setup):
    """Weight normalisation: only the direction of v matters, g sets the scale."""
    attn, query, values, mask = setup
    keys = attn.project_keys(values)
    before = attn(query, keys, values, mask)[1]
    with torch.no_grad():
        attn.v.mul_(3.0)
    torch.testing.assert_close(attn(query, keys, values, mask)[1], before)


def test_initial_scale_and_bias():
    attn = BahdanauAttention(HQ, D, A, normalize=True)
    assert attn.scale.item() == pytest.approx(1 / math.sqrt(A))
    assert torch.all(attn.bias == 0)
    plain = BahdanauAttention(HQ, D, A, normalize=False)
    assert plain.scale is None and plain.bias is None


@pytest.mark.parametrize("rows", [1, 2, 3, 64])  # 3 does not divide B*K = 12; 64 > every row
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_decoding_step_equals_the_one_pass_scores(rows, dtype):
    torch.manual_seed(1)
    attn = BahdanauAttention(HQ, D, A, normalize=True).to(dtype)
    query = torch.randn(12, 1, HQ, dtype=dtype)
    values = torch.randn(12, S, D, dtype=dtype)
    mask = torch.arange(S).unsqueeze(0) < torch.tensor([5, 3, 1, 4] * 3).unsqueeze(1)
    keys = attn.project_keys(values)
    with torch.no_grad():
        reference = attn(query, keys, values, mask)
        attn.chunk_bytes = rows * S * A * torch.finfo(dtype).bits // 8
        chunked = attn(query, keys, values, mask)
    for got, want in zip(chunked, reference, strict=True):
        assert torch.equal(got, want)


STEP_BYTES = S * A * 8  # one (S, A) float64 block: one decoding step of one row


@pytest.mark.parametrize(
    "chunk_bytes",
    [2 * T * STEP_BYTES, 2 * STEP_BYTES, 1, 10**9],  # 2 rows, 2 steps of a row, 1 step, all
)
def test_chunked_training_path_equals_the_one_pass_in_values_and_gradients(setup, chunk_bytes):
    attn, query, values, mask = setup
    query.requires_grad_(True), values.requires_grad_(True)
    upstream = torch.randn(B, T, D, dtype=torch.float64), torch.randn(B, T, S, dtype=torch.float64)
    results = []
    for chunk in (None, chunk_bytes):
        attn.chunk_bytes = chunk
        attn.zero_grad()
        query.grad = values.grad = None
        context, weights = attn(query, attn.project_keys(values), values, mask)
        torch.autograd.backward((context, weights), upstream)
        grads = [query.grad, values.grad, *(p.grad for p in attn.parameters())]
        results.append([context.detach(), weights.detach(), *grads])
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_chunked_scores_backward_passes_gradcheck():
    torch.manual_seed(3)
    q = torch.randn(B, T, A, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(B, S, A, dtype=torch.float64, requires_grad=True)
    vector = torch.randn(A, dtype=torch.float64, requires_grad=True)
    for chunk in (2 * STEP_BYTES, 2 * T * STEP_BYTES):
        assert torch.autograd.gradcheck(
            lambda *xs, chunk=chunk: _ChunkedScores.apply(*xs, chunk), (q, keys, vector)
        )


@pytest.mark.parametrize("chunk_bytes", [None, 2 * STEP_BYTES])
def test_the_chunked_training_path_keeps_no_tanh_activations(setup, chunk_bytes):
    attn, query, values, mask = setup
    attn.chunk_bytes = chunk_bytes
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, id):
        attn(query, attn.project_keys(values), values, mask)
    assert (B * T * S * A in saved) == (chunk_bytes is None)


def test_chunked_path_under_bf16_autocast_is_close_to_the_one_pass(setup):
    attn, query, values, mask = setup
    attn.float()
    query, values = query.float(), values.float()
    results = []
    for chunk in (None, 2 * STEP_BYTES):
        attn.chunk_bytes = chunk
        attn.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            context, _ = attn(query, attn.project_keys(values), values, mask)
        context.float().sum().backward()
        results.append([context.float().detach(), *(p.grad for p in attn.parameters())])
    assert all(p.grad.dtype == torch.float32 for p in attn.parameters())
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)
