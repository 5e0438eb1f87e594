#!/usr/bin/env python3
"""Export the tiny VAR checkpoint fixtures of tests/fixtures/var_tiny/ with the reference code.

The model code is the reference implementation's own (models/var.py, models/basic_var.py,
models/vqvae.py, models/basic_vae.py, models/quant.py, models/helpers.py):

    repository  FoundationVision/VAR
    revision    78b95394fc5896192e3a003e4b295f8ea743c48f
    python 3.11.7, torch 2.5.1 (CPU), numpy 2.4.6

Command (from the repository root; VAR_SRC is a checkout of that revision):

    python scripts/export_fixtures.py --var-src VAR_SRC --out tests/fixtures/var_tiny

Shape: tcvar's preset `tiny` (src/model/var/config.rs): scales (1, 2, 3, 4), width 32, 2 blocks,
2 heads, MLP ratio 4, vocabulary 32, code dimension 8, 10 classes; VQ-VAE decoder base channels 8,
multipliers (1, 2), num_res_blocks 0 (one ResNet block per level), attention in the middle and at
the lowest resolution, GroupNorm with 4 groups (the reference hard-codes 32 groups, which do not
divide 8 channels: `models.basic_vae.Normalize` is replaced by the same GroupNorm with 4 groups),
VAR's `attn_l2_norm=True`, 4 partially shared Phi convolutions. The VQ-VAE class hard-codes the
released decoder shape, so its encoder and decoder are rebuilt with the tiny shape.

Weights: a seeded random initialisation (torch.manual_seed(SEED)), every parameter drawn
uniformly at a scale that keeps activations in range (the released init sets the AdaLN gains to
1e-5, which would hide the transformer blocks), then rounded to float16 so that the files can be
stored in half precision and every copy holds exactly the same values.

Outputs (all small):
- var_tiny.pth: torch.save(var.state_dict()) in float16 (integer buffers stay int64);
- vae_tiny.pth: torch.save(vae.state_dict()) in float16 (encoder, quant_conv and the EMA
  statistics included: they are unused by the generation pass);
- tiny.safetensors: every tensor of both state dicts (float16);
- expected_tokens.json: {"labels": [...], "tokens": [instance][scale][row-major index]} of
  var.autoregressive_infer_cfg(B=4, label_B=[0, 1, 2, 3], cfg=0, top_k=1, top_p=0) (greedy,
  no guidance), with "min_top2_gap": the smallest gap between the largest and the second largest
  logit over every sampled position (the tokens are stable under rounding far below it);
- expected_images.npy: the images it returns, float32 N x 3 x H x W in [0, 1];
- shared/: the same for VAR's shared-AdaLN variant (shared_aln=True: `shared_ada_lin.*`, per
  block `ada_gss`), var_tiny_shared.pth (float16) with the same VQ-VAE;
- formats.pth: a dict {"model": {...}} of small tensors exercising the reader: float32, float16,
  bfloat16, int64, a transposed (non-contiguous) view and two views of one storage at offsets.
"""
import argparse
import json
import math
import os
import sys
import types

SEED = 2024
LABELS = [0, 1, 2, 3]
PATCH_NUMS = (1, 2, 3, 4)


def stub_hub():
    # models/var.py imports huggingface_hub for its hub wrapper class (VARHF), unused here.
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        m = types.ModuleType("huggingface_hub")

        class PyTorchModelHubMixin:  # noqa: D401
            pass

        m.PyTorchModelHubMixin = PyTorchModelHubMixin
        sys.modules["huggingface_hub"] = m


def build(var_src, shared_aln):
    import torch
    import torch.nn as nn

    sys.path.insert(0, var_src)
    stub_hub()
    import models.basic_vae as basic_vae
    from models.basic_vae import Decoder, Encoder
    from models.var import VAR
    from models.vqvae import VQVAE

    basic_vae.Normalize = lambda c, num_groups=4: nn.GroupNorm(
        num_groups=4, num_channels=c, eps=1e-6, affine=True
    )
    torch.manual_seed(SEED)
    vae = VQVAE(vocab_size=32, z_channels=8, ch=8, test_mode=True, share_quant_resi=4,
                v_patch_nums=PATCH_NUMS)
    dd = dict(dropout=0.0, ch=8, z_channels=8, in_channels=3, ch_mult=(1, 2),
              num_res_blocks=0, using_sa=True, using_mid_sa=True)
    vae.encoder = Encoder(double_z=False, **dd)
    vae.decoder = Decoder(**dd)
    vae.downsample = 2
    vae.eval()
    var = VAR(vae_local=vae, num_classes=10, depth=2, embed_dim=32, num_heads=2, mlp_ratio=4.0,
              drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, norm_eps=1e-6,
              shared_aln=shared_aln, cond_drop_rate=0.1, attn_l2_norm=True,
              patch_nums=PATCH_NUMS, flash_if_available=False, fused_if_available=False)
    var.eval()
    return torch, vae, var


def init_uniform(torch, module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            last = name.split(".")[-1]
            if "scale_mul_1H11" in name:
                v = math.log(4.0) + (torch.rand(p.shape, generator=g) * 2 - 1) * 0.5
            elif ("norm" in name and p.dim() == 1 and last == "weight"):
                v = 1.0 + (torch.rand(p.shape, generator=g) * 2 - 1) * 0.2
            elif last == "bias" or name.endswith("q_bias") or name.endswith("v_bias"):
                v = (torch.rand(p.shape, generator=g) * 2 - 1) * 0.1
            elif "ada_lin" in name or "ada_gss" in name:
                v = (torch.rand(p.shape, generator=g) * 2 - 1) * 0.5 * math.sqrt(3.0 / 32)
            elif p.dim() >= 2 and name.startswith(("blocks", "head", "word_embed", "encoder",
                                                    "decoder", "quant", "post_quant")) \
                    and "embedding" not in name:
                fan_in = p[0].numel()
                v = (torch.rand(p.shape, generator=g) * 2 - 1) * math.sqrt(3.0 / fan_in)
            elif name.startswith(("pos_", "lvl_embed")):
                v = (torch.rand(p.shape, generator=g) * 2 - 1) * 0.5
            else:  # class_emb, codebook
                v = torch.rand(p.shape, generator=g) * 2 - 1
            p.copy_(v.half().float())


def run(torch, var):
    import models.var as var_mod

    gaps, toks = [], []
    orig = var_mod.sample_with_top_k_top_p_

    def recording(logits_BlV, **kw):
        top2 = logits_BlV.topk(2, dim=-1).values
        gaps.append(float((top2[..., 0] - top2[..., 1]).min()))
        idx = orig(logits_BlV, **kw)
        toks.append(idx[:, :, 0].clone())
        return idx

    var_mod.sample_with_top_k_top_p_ = recording
    with torch.no_grad():
        img = var.autoregressive_infer_cfg(B=len(LABELS), label_B=torch.tensor(LABELS),
                                           g_seed=0, cfg=0.0, top_k=1, top_p=0.0)
    var_mod.sample_with_top_k_top_p_ = orig
    tokens = [[t[i].tolist() for t in toks] for i in range(len(LABELS))]
    return tokens, min(gaps), img


def save_expected(out, tokens, gap, img):
    import numpy as np

    with open(os.path.join(out, "expected_tokens.json"), "w") as f:
        json.dump({"labels": LABELS, "patch_nums": list(PATCH_NUMS), "tokens": tokens,
                   "min_top2_gap": gap}, f)
        f.write("\n")
    np.save(os.path.join(out, "expected_images.npy"), img.numpy().astype(np.float32))


def half_sd(torch, sd):
    return {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--var-src", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, "shared"), exist_ok=True)

    torch, vae, var = build(a.var_src, shared_aln=False)
    init_uniform(torch, vae, SEED + 1)
    init_uniform(torch, var, SEED + 2)
    tokens, gap, img = run(torch, var)
    print("min top-2 logit gap", gap)
    torch.save(half_sd(torch, var.state_dict()), os.path.join(a.out, "var_tiny.pth"))
    torch.save(half_sd(torch, vae.state_dict()), os.path.join(a.out, "vae_tiny.pth"))
    from safetensors.torch import save_file

    both = {**half_sd(torch, vae.state_dict()), **half_sd(torch, var.state_dict())}
    save_file({k: v.contiguous() for k, v in both.items()},
              os.path.join(a.out, "tiny.safetensors"))
    save_expected(a.out, tokens, gap, img)

    vae_sd = vae.state_dict()
    torch, vae2, var2 = build(a.var_src, shared_aln=True)
    vae2.load_state_dict(vae_sd)
    init_uniform(torch, var2, SEED + 3)
    tokens, gap, img = run(torch, var2)
    print("shared AdaLN: min top-2 logit gap", gap)
    torch.save(half_sd(torch, var2.state_dict()),
               os.path.join(a.out, "shared", "var_tiny_shared.pth"))
    save_expected(os.path.join(a.out, "shared"), tokens, gap, img)

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8
    fm = {
        "f32": base.clone(),
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "i64": torch.arange(5, dtype=torch.int64),
        "transposed": base.t(),
        "row1": base[1],
        "col_tail": base[2:, 3:],
    }
    torch.save({"model": fm, "epoch": 3}, os.path.join(a.out, "formats.pth"))


if __name__ == "__main__":
    main()
