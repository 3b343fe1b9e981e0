"""Seq2Seq: encode/init_state/step agree with teacher forcing; embeddings; init; overfitting."""

import math

import pytest
import torch
import torch.nn.functional as F

from nmt.model.config import RNN_TYPES, Seq2SeqConfig
from nmt.model.seq2seq import EncoderOutput, Seq2Seq, build_model

V, PAD, BOS, EOS = 17, 0, 2, 3


def _config(rnn_type="lstm", size=8, layers=2, dropout=0.2, **kwargs):
    layer = {"num_layers": layers, "hidden_size": size, "dropout": dropout}
    return Seq2SeqConfig(
        rnn_type=rnn_type,
        embed_dim=size,
        encoder=dict(layer),
        decoder=dict(layer),
        attention={"hidden_size": size},
        **kwargs,
    )


def _batch(seed=0, src_lengths=(5, 2, 4), tgt_lengths=(3, 6, 1)):
    """Random ids padded at the end; tgt_in starts with BOS."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.full((len(src_lengths), max(src_lengths)), PAD)
    tgt_in = torch.full((len(tgt_lengths), max(tgt_lengths) + 1), PAD)
    for b, (n, m) in enumerate(zip(src_lengths, tgt_lengths, strict=True)):
        src[b, :n] = torch.randint(4, V, (n,), generator=gen)
        tgt_in[b, 0] = BOS
        tgt_in[b, 1 : m + 1] = torch.randint(4, V, (m,), generator=gen)
    return src, torch.tensor(src_lengths), tgt_in


def _step_through(model: Seq2Seq, src, src_lengths, tgt_in):
    """Feed tgt_in one token at a time through encode/init_state/step."""
    state = model.init_state(model.encode(src, src_lengths))
    log_probs, attn = [], []
    for t in range(tgt_in.shape[1]):
        lp, a, state = model.step(tgt_in[:, t], state)
        log_probs.append(lp)
        attn.append(a)
    return torch.stack(log_probs, 1), torch.stack(attn, 1)


def _assert_each_sentence_scores_the_same_alone(model, src, src_lengths, tgt_in, batched):
    """Row b of the padded batch's logits equals sentence b scored without padding."""
    for b in range(src.shape[0]):
        n = int(src_lengths[b])
        alone = model(src[b : b + 1, :n], src_lengths[b : b + 1], tgt_in[b : b + 1])
        torch.testing.assert_close(batched[b], alone[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_step_by_step_equals_teacher_forcing(rnn_type):
    torch.manual_seed(0)
    model = build_model(_config(rnn_type, layers=3), V, V).double().eval()
    src, src_lengths, tgt_in = _batch()
    with torch.no_grad():
        logits, attn = model.forward_with_attn(src, src_lengths, tgt_in)
        step_log_probs, step_attn = _step_through(model, src, src_lengths, tgt_in)
    assert logits.shape == (3, tgt_in.shape[1], V)
    assert step_log_probs.dtype == torch.float32  # the search contract, whatever the model dtype
    expected = F.log_softmax(logits, -1).float()
    torch.testing.assert_close(step_log_probs, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(step_attn, attn, rtol=0, atol=1e-10)


def _assert_paths_equal_and_padding_exact(model, src, src_lengths, tgt_in):
    """Step by step == teacher forcing, and each sentence scores the same alone; the logits."""
    with torch.no_grad():
        logits = model(src, src_lengths, tgt_in)
        step_log_probs, _ = _step_through(model, src, src_lengths, tgt_in)
        expected = F.log_softmax(logits, -1).float()
        torch.testing.assert_close(step_log_probs, expected, rtol=0, atol=1e-6)
        _assert_each_sentence_scores_the_same_alone(model, src, src_lengths, tgt_in, logits)
    return logits


@pytest.mark.parametrize("knobs", [{"layer_norm": True}, {"bridge": True}])
def test_layer_norm_and_bridge_keep_both_paths_equal_and_padding_exact(knobs):
    torch.manual_seed(5)
    model = build_model(_config("lstm", layers=3, **knobs), V, V).double().eval()
    src, src_lengths, tgt_in = _batch(seed=6)
    _assert_paths_equal_and_padding_exact(model, src, src_lengths, tgt_in)


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_no_residual_layer_keeps_both_paths_equal_and_changes_the_output(side):
    """`model.<side>.no_residual_layer` reaches that stack; parallel == step by step holds."""
    layer = {"num_layers": 4, "hidden_size": 8, "dropout": 0.2}
    stacks = {"encoder": dict(layer), "decoder": dict(layer)}
    stacks[side]["no_residual_layer"] = 3
    config = Seq2SeqConfig(embed_dim=8, attention={"hidden_size": 8}, **stacks)
    torch.manual_seed(5)
    model = build_model(config, V, V).double().eval()
    torch.manual_seed(5)
    default = build_model(_config("lstm", layers=4), V, V).double().eval()
    assert getattr(model, side).no_residual_layer == 3
    other = "decoder" if side == "encoder" else "encoder"
    assert getattr(model, other).no_residual_layer is None
    src, src_lengths, tgt_in = _batch(seed=6)
    logits = _assert_paths_equal_and_padding_exact(model, src, src_lengths, tgt_in)
    with torch.no_grad():
        assert (logits - default(src, src_lengths, tgt_in)).abs().max() > 1e-4


def test_layer_norm_normalises_every_encoder_layer_output():
    torch.manual_seed(7)
    model = build_model(_config("lstm", layers=3, layer_norm=True), V, V).double().eval()
    encoder = model.encoder
    src, src_lengths, tgt_in = _batch(seed=8)
    emb = model.src_embed(src)
    with torch.no_grad():
        x = F.layer_norm(encoder.bidirectional_layer(emb, src_lengths), (16,))  # gain 1, bias 0
        x = F.layer_norm(encoder.layers[0](x)[0], (8,))  # layer 2: not residual
        out = encoder.layers[1](x)[0]
        expected = F.layer_norm(out + x, (8,))  # layer 3: residual, then normalised
        torch.testing.assert_close(encoder(emb, src_lengths), expected, rtol=0, atol=1e-12)
        top, _ = model.features(src, src_lengths, tgt_in)  # (B,T,H): decoder's normalised top
    torch.testing.assert_close(top.mean(-1), torch.zeros(top.shape[:2], dtype=top.dtype))
    variance = top.var(-1, unbiased=False)
    torch.testing.assert_close(variance, torch.ones_like(variance), rtol=0, atol=1e-3)


def test_bridge_starts_the_decoder_from_the_mean_of_the_real_encoder_outputs():
    torch.manual_seed(9)
    model = build_model(_config("lstm", layers=2, bridge=True), V, V).double().eval()
    src, src_lengths, _ = _batch(seed=10)
    with torch.no_grad():
        enc = model.encode(src, src_lengths)
        state = model.init_state(enc)
        bridge = model.decoder.bridge
        for b, n in enumerate(src_lengths.tolist()):
            mean = enc.enc_out[b, :n].mean(0)  # (D,): padding left out
            expected = torch.tanh(bridge.weight @ mean + bridge.bias).view(2, 8)  # (L,H)
            torch.testing.assert_close(state.h[:, b], expected, rtol=0, atol=1e-12)
    assert torch.all(state.c == 0)


def test_step_by_step_equals_teacher_forcing_float32():
    torch.manual_seed(1)
    model = build_model(_config("lstm", size=16, layers=4), V, V).eval()
    src, src_lengths, tgt_in = _batch(seed=3)
    with torch.no_grad():
        logits = model(src, src_lengths, tgt_in)
        step_log_probs, _ = _step_through(model, src, src_lengths, tgt_in)
    assert step_log_probs.dtype == torch.float32
    torch.testing.assert_close(step_log_probs, F.log_softmax(logits, -1), rtol=0, atol=1e-5)


def test_a_sentence_scores_the_same_alone_and_in_a_padded_batch():
    torch.manual_seed(2)
    model = build_model(_config("lstm", layers=3), V, V).double().eval()
    src, src_lengths, tgt_in = _batch(seed=4)
    with torch.no_grad():
        batched = model(src, src_lengths, tgt_in)
        _assert_each_sentence_scores_the_same_alone(model, src, src_lengths, tgt_in, batched)


def test_encode_outputs_and_attention_mask():
    torch.manual_seed(3)
    model = build_model(_config(), V, V).double().eval()
    src, src_lengths, tgt_in = _batch()
    enc = model.encode(src, src_lengths)
    assert isinstance(enc, EncoderOutput)
    assert enc.src_mask.tolist() == (src != PAD).tolist()
    torch.testing.assert_close(enc.keys, model.decoder.attention.project_keys(enc.enc_out))
    _, attn = model.forward_with_attn(src, src_lengths, tgt_in)
    assert torch.all(attn.masked_select(~enc.src_mask.unsqueeze(1).expand_as(attn)) == 0)
    torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:2], dtype=attn.dtype))


def test_shared_and_tied_embeddings():
    model = build_model(_config(tie_output=True), V, V)
    assert model.src_embed is model.tgt_embed
    assert model.output_proj.weight is model.tgt_embed.weight
    names = {name for name, _ in model.named_parameters()}
    assert "src_embed.weight" in names and "output_proj.weight" not in names  # one tensor

    separate = build_model(_config(share_embeddings=False), V, V + 3)
    assert separate.src_embed is not separate.tgt_embed
    assert separate.src_embed.num_embeddings == V and separate.tgt_embed.num_embeddings == V + 3
    assert separate.output_proj.out_features == V + 3
    with pytest.raises(ValueError, match="model.share_embeddings"):
        build_model(_config(share_embeddings=True), V, V + 3)


def test_initialisation_ranges():
    torch.manual_seed(4)
    model = build_model(_config(init_range=0.05), V, V, pad_id=PAD)
    attention = model.decoder.attention
    for name, param in model.named_parameters():
        if param is not attention.scale:
            assert param.abs().max() <= 0.05, name
    assert attention.scale.item() == pytest.approx(1 / math.sqrt(attention.hidden_size))
    assert torch.all(attention.bias == 0)
    assert torch.all(model.src_embed.weight[PAD] == 0)
    spread = model.encoder.forward_rnn.weight_ih_l0
    assert spread.abs().max() > 0.04  # actually drawn from the range, not left at zero


def _overfit_data(num_pairs=10, max_len=6, seed=1):
    gen = torch.Generator().manual_seed(seed)
    src_lengths = torch.randint(3, max_len + 1, (num_pairs,), generator=gen)
    tgt_lengths = torch.randint(3, max_len + 1, (num_pairs,), generator=gen)
    src = torch.full((num_pairs, max_len), PAD)
    tgt_in = torch.full((num_pairs, max_len + 1), PAD)
    tgt_out = torch.full((num_pairs, max_len + 1), PAD)
    for i, (n, m) in enumerate(zip(src_lengths.tolist(), tgt_lengths.tolist(), strict=True)):
        src[i, :n] = torch.randint(4, V, (n,), generator=gen)
        tokens = torch.randint(4, V, (m,), generator=gen)
        tgt_in[i, 0], tgt_in[i, 1 : m + 1] = BOS, tokens
        tgt_out[i, :m], tgt_out[i, m] = tokens, EOS
    return src, src_lengths, tgt_in, tgt_out, tgt_lengths


def _greedy(model: Seq2Seq, src, src_lengths, max_len):
    state = model.init_state(model.encode(src, src_lengths))
    prev, hyps = torch.full((src.shape[0],), BOS), []
    for _ in range(max_len):
        log_probs, _, state = model.step(prev, state)
        prev = log_probs.argmax(-1)
        hyps.append(prev)
    return torch.stack(hyps, 1)


def _check_overfits(rnn_type):
    torch.manual_seed(0)
    model = build_model(_config(rnn_type, size=32, dropout=0.0), V, V)
    src, src_lengths, tgt_in, tgt_out, tgt_lengths = _overfit_data()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        logits = model(src, src_lengths, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        hyps = _greedy(model, src, src_lengths, tgt_out.shape[1])
    for i, m in enumerate(tgt_lengths.tolist()):
        assert hyps[i, : m + 1].tolist() == tgt_out[i, : m + 1].tolist(), f"pair {i}"


def test_overfits_ten_pairs_lstm():
    _check_overfits("lstm")


@pytest.mark.slow
@pytest.mark.parametrize("rnn_type", ["gru", "lstm_peephole", "lstm_coupled"])
def test_overfits_ten_pairs_other_types(rnn_type):
    _check_overfits(rnn_type)


def test_build_model_rejects_bad_vocab():
    with pytest.raises(ValueError, match="src_vocab_size"):
        build_model(_config(share_embeddings=False), 0, V)


# Toggling the oneDNN flags re-sets its TF32 switch, which warns on CPU-only builds.
@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_runs_under_bf16_autocast(rnn_type):
    """Mixed dtypes (bf16 matmuls, float32 recurrent state) must combine without errors.

    oneDNN's fused LSTM cannot build a bf16 primitive on CPUs without AVX512-BF16, so the
    reference kernels are used here; that limitation is torch's, not the model's.
    """
    torch.manual_seed(5)
    model = build_model(_config(rnn_type), V, V)
    src, src_lengths, tgt_in = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.backends.mkldnn.flags(enabled=False):
        logits, attn = model.forward_with_attn(src, src_lengths, tgt_in)
        log_probs, _, _ = model.step(tgt_in[:, 0], model.init_state(model.encode(src, src_lengths)))
    logits.float().sum().backward()
    assert logits.dtype == torch.bfloat16 and log_probs.dtype == torch.float32
    assert torch.isfinite(logits.float()).all() and torch.isfinite(attn.float()).all()
    assert model.src_embed.weight.grad is not None
