"""Route C, issue 34 item 3: under the `soft` latent-mask policy the InpaintNet must not be handed the answer in training.

The toy world: every token is eight independent fair bits, drawn twice in its 4x4 patch (the top half and the bottom
half each hold bits 0-3 in their first row and bits 4-7 in their second), and the toy encoder reads a bit only where
both copies show it. The stripes mask hides two pixel rows in six, so every unknown token has exactly one half hidden
(soft weight w = 0.5) and the corrupted image codes it as all zeros. Nothing visible says anything about its bits: a
network trained only on what corrupted images show is at chance on them. The trainer this replaces fed the network the
clean code scaled by 1 - w, so a half-hidden token arrived as half its own target and the network copied it.
"""
import torch

from drift_nb.routec.inpaint import InpaintNet, InpaintTrainer, amortized_inpaint
from drift_nb.routec.masks import make_pixel_mask, occlude, pixel_to_bit_mask

K = 8


def render(z: torch.Tensor) -> torch.Tensor:
    "Images (B, 1, 28, 28): pixel (r, c) of patch (i, j) shows bit 4 * (r % 2) + c of token (i, j)."
    B = z.shape[0]
    half = z.view(B, 2, 4, 7, 7)                                    # (B, r, c, i, j), r in {0, 1}
    return torch.cat([half, half], 1).permute(0, 3, 1, 4, 2).reshape(B, 1, 28, 28)


def encode(x: torch.Tensor) -> torch.Tensor:
    "Codes (B, 8, 7, 7): a bit is 1 where both halves of its patch show it."
    B = x.shape[0]
    p = x.reshape(B, 7, 4, 7, 4).permute(0, 2, 4, 1, 3)              # (B, r, c, i, j), r in 0..3
    return ((p[:, :2] * p[:, 2:]) > 0.5).float().reshape(B, K, 7, 7)


def world(n: int, seed: int):
    "n fair random codes, their images, and the stripes masks (pixel mask, soft latent mask)."
    z = (torch.rand(n, K, 7, 7, generator=torch.Generator().manual_seed(seed)) < 0.5).float()
    pm = make_pixel_mask("stripes", n)
    return z, render(z), pm, pixel_to_bit_mask(pm, "soft")


def stem_input(trainer: InpaintTrainer, z, x, pm, bm) -> torch.Tensor:
    "What the network's first layer reads in one `InpaintTrainer.losses` call."
    got = []
    h = trainer.net.stem.register_forward_hook(lambda mod, inp, out: got.append(inp[0].detach().clone()))
    try: trainer.losses(z, x, None, pm, bm)
    finally: h.remove()
    return got[0]


def hidden_tokens(bm: torch.Tensor) -> torch.Tensor:
    "The unknown tokens' bits, as a (B, k, 7, 7) bool."
    return (bm > 0).unsqueeze(1).expand(-1, K, -1, -1)


def test_toy_world():
    z, x, pm, bm = world(64, 0)
    assert torch.equal(encode(x), z)                                  # the toy encoder inverts the renderer
    assert set(bm.unique().tolist()) == {0.0, 0.5}                    # every unknown token is half hidden
    z_obs = encode(occlude(x, pm))
    assert not z_obs[hidden_tokens(bm)].any()                         # and the corrupted image codes it as zeros
    assert torch.equal(z_obs[~hidden_tokens(bm)], z[~hidden_tokens(bm)])


def test_soft_training_input_holds_no_hidden_bits():
    "Two batches whose corrupted images code the same, but whose hidden tokens differ, must look the same to the network."
    z, x, pm, bm = world(32, 1)
    z2 = torch.where(hidden_tokens(bm), 1 - z, z)                     # every hidden bit flipped
    assert torch.equal(encode(occlude(x, pm)), encode(occlude(render(z2), pm)))
    torch.manual_seed(0)
    net = InpaintNet(K, hidden=8, n_blocks=1)
    for kw in ({}, {"encode": encode}):
        tr = InpaintTrainer(net, mask_types=("stripes",), bitmask_policy="soft", **kw)
        a, b = stem_input(tr, z, x, pm, bm), stem_input(tr, z2, render(z2), pm, bm)
        assert torch.equal(a[:, K], bm) and torch.equal(b[:, K], bm)  # the mask channel is the soft weight
        assert torch.equal(a, b), f"{kw or 'no encode'}: the hidden bits reach the network in training"


def _train(seed: int, **kw):
    torch.manual_seed(seed)
    net = InpaintNet(K, hidden=16, n_blocks=1)
    z, x, _, _ = world(2048, seed)
    tr = InpaintTrainer(net, mask_types=("stripes",), bitmask_policy="soft", lr=3e-3, seed=seed, **kw)
    hist = tr.train(z, x, steps=150, batch_size=64)
    return tr, hist


def test_soft_trained_net_is_at_chance_on_tokens_it_never_saw():
    "Bit accuracy at the half-hidden tokens, in training and on fresh codes: chance (0.5), not the copied answer."
    for kw in ({}, {"encode": encode}):
        tr, hist = _train(0, **kw)
        acc_train = float(hist["bit_acc"].tail(50).mean())
        z, x, pm, bm = world(256, 99)                                  # fresh codes: nothing to remember
        acc_fresh = float(tr.losses(z, x, None, pm, bm)[1]["bit_acc"])
        z_hat = amortized_inpaint(tr.net, encode(occlude(x, pm)), bm)  # as the solvers run it at evaluation
        acc_eval = float((z_hat == z)[hidden_tokens(bm)].float().mean())
        print(kw or "no encode", {"train": round(acc_train, 4), "fresh": round(acc_fresh, 4), "eval": round(acc_eval, 4)})
        assert abs(acc_train - 0.5) < 0.05 and abs(acc_fresh - 0.5) < 0.03 and abs(acc_eval - 0.5) < 0.03, (acc_train, acc_fresh, acc_eval)


def test_encode_gives_the_network_what_the_solvers_give_it():
    "With `encode`, the training input is the one `amortized_inpaint` builds from the corrupted image, under every policy."
    z, x, pm, _ = world(16, 2)
    net = InpaintNet(K, hidden=8, n_blocks=1)
    for policy in ("soft", "any", "majority"):
        bm = pixel_to_bit_mask(pm, policy)
        tr = InpaintTrainer(net, mask_types=("stripes",), bitmask_policy=policy, encode=encode)
        got = []
        h = net.stem.register_forward_hook(lambda mod, inp, out: got.append(inp[0].detach().clone()))
        try: amortized_inpaint(net, encode(occlude(x, pm)), bm)
        finally: h.remove()
        assert torch.equal(stem_input(tr, z, x, pm, bm), got[0]), policy


def test_hard_policy_input_unchanged():
    "Without `encode` a hard mask trains as before: the clean code with the unknown tokens blanked (by the network)."
    z, x, pm, _ = world(16, 3)
    bm = pixel_to_bit_mask(pm, "any")
    net = InpaintNet(K, hidden=8, n_blocks=1)
    tr = InpaintTrainer(net, mask_types=("stripes",))
    got = stem_input(tr, z, x, pm, bm)
    m = bm.unsqueeze(1).float()
    assert torch.equal(got, torch.cat([z * (1 - m), m], 1))


def test_encode_needs_images():
    net = InpaintNet(K, hidden=8, n_blocks=1)
    tr = InpaintTrainer(net, bitmask_policy="soft", encode=encode)
    z, _, _, _ = world(8, 4)
    try: tr.train(z, steps=1, batch_size=4); raise AssertionError("expected ValueError")
    except ValueError as e: assert "x_train" in str(e) and "encode" in str(e)
