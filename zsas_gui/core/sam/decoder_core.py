"""SAM's prompt encoder (masks) + mask decoder, restructured for speed; the same maths.

``DecoderCore`` computes what ``Sam.mask_decoder(...)`` computes for one prompt set on one cached
image embedding (the low-res logits of all 4 mask tokens and their predicted IoU), with less
work per call:

- per image (once, :meth:`DecoderCore.per_image`): the image tokens in token-major layout and the
  first layer's three image-side projections (token->image keys/values, image->token queries);
- per call, the dense mask prompt enters those projections through low-rank products: the mask
  embedding is ``W_c h + b_c`` with ``h`` only 16 channels (SAM's last 1x1 conv), so
  ``W_k (src + W_c h + b_c) = W_k src + (W_k W_c) h + W_k b_c``;
- attentions where a handful of tokens meet the 4096 image tokens fold the key/value (or query)
  projection into the token side (``q W_k`` instead of ``W_k x`` for every image token), softmax
  runs along the contiguous axis, and the image->token output projection is folded into the
  attention weights;
- the final token->image attention runs for the 5 output tokens only (the others are unused);
- the transposed 2x2 stride-2 convolutions are plain matrix products in token-major layout.

Results equal SAM's up to float rounding (max abs difference of logits ~1e-6); the refine test
compares masks with ``SamPredictor``. The module holds only SAM's own parameters and buffers
derived from them, and exports to ONNX as two graphs (:mod:`.onnx_decoder`).

SAM 2's mask decoder (``SAM2Base.sam_mask_decoder``) is the same two-way transformer with an
object-score token before the IoU token and the encoder's two high-resolution maps added inside
the upscaling (``act1(ln1(dc1(src) + feat_s1))``, ``act2(dc2(.) + feat_s0)``): :meth:`decode`
with ``high_res`` from :meth:`high_res_rows` (torch only; :mod:`.sam2_fast`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _heads_w(w: torch.Tensor, nh: int) -> torch.Tensor:
    """A projection weight (Ci, C) split per head: (nh, Ci/nh, C)."""
    return w.reshape(nh, w.shape[0] // nh, w.shape[1])


class DecoderCore(nn.Module):
    """SAM decoder for one prompt set. Raises ``ValueError`` for a decoder of another structure
    (callers then use SAM's own ``predict``)."""

    def __init__(self, sam):
        super().__init__()
        if hasattr(sam, "sam_mask_decoder"):                              # SAM 2 (SAM2Base)
            pe_mod, dec = sam.sam_prompt_encoder, sam.sam_mask_decoder
        else:
            pe_mod, dec = sam.prompt_encoder, sam.mask_decoder
        tr = dec.transformer
        _check_structure(pe_mod, dec)
        self.tr, self.dec = tr, dec
        self.nh = int(tr.layers[0].cross_attn_token_to_image.num_heads)
        self.pk_dim = int(tr.layers[0].cross_attn_token_to_image.k_proj.weight.shape[0])   # Ci
        # 1/sqrt(head dim) applied to the (few) query-side rows, not to the (nh*T, HW) scores;
        # for SAM (head dim 16) it is 0.25, a power of two, so the products are the same numbers
        self.scale = 1.0 / math.sqrt(self.pk_dim // self.nh)
        self.mask_head = pe_mod.mask_downscaling[:-1]                     # (1,1,m,m) -> (1,16,g,g)
        up = dec.output_upscaling
        self.up_act1, self.up_act2 = up[2], up[4]
        self.up_ln = up[1]
        self.c1 = int(up[0].weight.shape[1])
        self.c2 = int(up[3].weight.shape[1])
        dtype = dec.iou_token.weight.dtype
        with torch.no_grad():
            pe = pe_mod.get_dense_pe()[0].float()                          # (C, g, g)
            self.g = int(pe.shape[-1])
            self.C = int(pe.shape[0])
            self.s = 1 if getattr(dec, "pred_obj_scores", False) else 0  # SAM 2: object-score token first
            self.n_out = self.s + 1 + int(dec.num_mask_tokens)             # output tokens: [obj], iou, masks
            tokens = [dec.obj_score_token.weight] if self.s else []
            f32 = {}
            f32["pe"] = pe.flatten(1).t()                                  # (HW, C)
            f32["out_tokens"] = torch.cat(tokens + [dec.iou_token.weight, dec.mask_tokens.weight], 0).float()
            conv = pe_mod.mask_downscaling[-1]
            wc = conv.weight[:, :, 0, 0].float()                           # (C, 16)
            bc = conv.bias.float()
            nm = pe_mod.no_mask_embed.weight[0].float()
            f32["wc_t"], f32["bc"], f32["no_mask"] = wc.t(), bc, nm
            l0 = tr.layers[0]
            for name, lin in (("k", l0.cross_attn_token_to_image.k_proj),
                              ("v", l0.cross_attn_token_to_image.v_proj),
                              ("q", l0.cross_attn_image_to_token.q_proj)):
                w = lin.weight.float()
                f32[f"m{name}_t"] = (w @ wc).t()                            # (16, Ci)
                f32[f"c{name}"] = w @ bc                                   # mask-path constant
                f32[f"n{name}"] = w @ nm                                   # no-mask constant
            c1, c2 = up[0], up[3]
            # ConvTranspose2d(k=2, s=2) as (pixels, C_in) @ (C_in, 2*2*C_out), columns (di, dj, o)
            f32["w1"] = c1.weight.float().permute(0, 2, 3, 1).reshape(c1.weight.shape[0], -1)
            f32["b1"] = c1.bias.float().repeat(4)
            f32["w2"] = c2.weight.float().permute(0, 2, 3, 1).reshape(c2.weight.shape[0], -1)
            f32["b2"] = c2.bias.float().repeat(4)
            for name, t in f32.items():
                self.register_buffer(name, t.detach().to(dtype).clone().contiguous(), persistent=False)

    # ------------------------------------------------------------------ per image
    @torch.no_grad()
    def per_image(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """features (1, C, g, g) -> 8 tensors, computed once per image: the inputs of
        :meth:`forward_mask` (image tokens (HW, C) and the first layer's image-side projections
        (HW, Ci), with the mask path's constant terms) then those of :meth:`forward_nomask`
        (the same with the no-mask embedding added)."""
        img = features[0].flatten(1).t().contiguous().to(self.pe.dtype)
        l0 = self.tr.layers[0]
        a, b = l0.cross_attn_token_to_image, l0.cross_attn_image_to_token
        ip = img + self.pe
        pk = F.linear(ip, a.k_proj.weight, a.k_proj.bias)
        pv = F.linear(img, a.v_proj.weight, a.v_proj.bias)
        pq = F.linear(ip, b.q_proj.weight, b.q_proj.bias)
        return (img + self.bc, pk + self.ck, pv + self.cv, pq + self.cq,
                img + self.no_mask, pk + self.nk, pv + self.nv, pq + self.nq)

    # ------------------------------------------------------------------ per call
    def forward_nomask(self, sparse, keys, k0, v0, q0, multimask=None):
        """sparse (N, C) prompt tokens; the last 4 tensors of :meth:`per_image`
        -> low (4, m, m) logits over the padded square, iou (4,).

        With ``multimask`` (a 0-d bool tensor) only the candidate SAM's ``predict`` ranks first
        is upscaled to low-res logits: token 0 when False, else the best of tokens 1-3 by
        predicted IoU -> low (1, m, m), iou (4,), index (0-d int64: which token)."""
        return self._decode(sparse, keys, k0, v0, q0, multimask)

    def forward_mask(self, sparse, mask_input, img, pk, pv, pq, multimask=None):
        """As :meth:`forward_nomask` with a mask prompt: mask_input (1, 1, m, m) logits; the
        first 4 tensors of :meth:`per_image`."""
        return self._decode(sparse, *self._with_mask(mask_input, img, pk, pv, pq), multimask)

    def decode(self, sparse, mask_input, per_image, high_res=None):
        """Every output token's logits: sparse (N, C); mask_input (1, 1, m, m) or None; the 8
        tensors of :meth:`per_image`; high_res: SAM 2's maps from :meth:`high_res_rows` (None
        for SAM 1) -> low (K, m, m) over the embedding's square, iou (K,); K = mask tokens."""
        if mask_input is None:
            return self._decode(sparse, *per_image[4:], high_res=high_res)
        return self._decode(sparse, *self._with_mask(mask_input, *per_image[:4]), high_res=high_res)

    @torch.no_grad()
    def high_res_rows(self, feat_s0: torch.Tensor, feat_s1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SAM 2's high-resolution maps feat_s1 (1, c1, 2g, 2g) and feat_s0 (1, c2, 4g, 4g) in the
        row order of the upscaling's products: (4 HW, c1) rows (i, j, di, dj) for pixel
        (2i + di, 2j + dj), and (16 HW, c2) rows (i, j, di, dj, ei, ej) for (4i + 2di + ei, ...)."""
        g, c1, c2 = self.g, self.c1, self.c2
        s1 = feat_s1[0].to(self.pe.dtype).reshape(c1, g, 2, g, 2).permute(1, 3, 2, 4, 0).reshape(-1, c1)
        s0 = feat_s0[0].to(self.pe.dtype).reshape(c2, g, 2, 2, g, 2, 2).permute(1, 4, 2, 5, 3, 6, 0).reshape(-1, c2)
        return s1.contiguous(), s0.contiguous()

    def _with_mask(self, mask_input, img, pk, pv, pq):
        """The image-side tensors with the dense mask prompt added (low-rank, see the module)."""
        h = self.mask_head(mask_input)[0].flatten(1).t()                   # (HW, 16)
        return (torch.addmm(img, h, self.wc_t), torch.addmm(pk, h, self.mk_t),
                torch.addmm(pv, h, self.mv_t), torch.addmm(pq, h, self.mq_t))

    def _decode(self, sparse, keys, k0, v0, q0, multimask=None, high_res=None):
        nh, tr = self.nh, self.tr
        qpe = torch.cat([self.out_tokens, sparse], 0)                       # (T, C)
        l0 = tr.layers[0]                                                  # skip_first_layer_pe
        queries = l0.norm1(l0.self_attn(q=qpe[None], k=qpe[None], v=qpe[None])[0])
        queries = l0.norm2(queries + self._tok_to_img_kv(l0.cross_attn_token_to_image, queries + qpe, k0, v0))
        queries = l0.norm3(queries + l0.mlp(queries))
        b = l0.cross_attn_image_to_token
        kt = F.linear(queries + qpe, b.k_proj.weight, b.k_proj.bias) * self.scale   # (T, Ci)
        T, ci = kt.shape
        d = ci // nh
        s = torch.bmm(kt.reshape(T, nh, d).transpose(0, 1), q0.reshape(-1, nh, d).permute(1, 2, 0))
        keys = self._ln(l0.norm4, self._img_to_tok(b, s, queries, keys))
        for layer in tr.layers[1:]:
            q = queries + qpe
            queries = layer.norm1(queries + layer.self_attn(q=q[None], k=q[None], v=queries[None])[0])
            kp = keys + self.pe
            queries = layer.norm2(queries + self._tok_to_img(layer.cross_attn_token_to_image,
                                                             queries + qpe, kp, keys))
            queries = layer.norm3(queries + layer.mlp(queries))
            b = layer.cross_attn_image_to_token
            kth = (F.linear(queries + qpe, b.k_proj.weight, b.k_proj.bias) * self.scale
                   ).reshape(T, nh, d).transpose(0, 1)
            qk = torch.bmm(kth, _heads_w(b.q_proj.weight, nh)).reshape(nh * T, -1)         # (nh*T, C)
            qb = (kth * b.q_proj.bias.reshape(nh, 1, d)).sum(-1).reshape(nh * T, 1)
            keys = self._ln(layer.norm4, self._img_to_tok(b, torch.addmm(qb, qk, kp.t()), queries, keys))
        n = self.n_out                                                     # only the output tokens
        fa = tr.final_attn_token_to_image
        hs = tr.norm_final_attn(queries[:n] + self._tok_to_img(fa, queries[:n] + qpe[:n], keys + self.pe, keys))
        dec, s = self.dec, self.s
        iou = dec.iou_prediction_head(hs[s:s + 1])[0]                      # (4,)
        hyper = torch.stack([dec.output_hypernetworks_mlps[i](hs[s + 1 + i]) for i in range(n - 1 - s)], 0)
        y = torch.addmm(self.b1, keys, self.w1).reshape(-1, self.c1)        # (HW*4, c1)
        if high_res is not None:
            y = y + high_res[0]
        y = self.up_act1(F.layer_norm(y, (self.c1,), self.up_ln.weight, self.up_ln.bias, self.up_ln.eps))
        y = torch.addmm(self.b2, y, self.w2).reshape(-1, self.c2)           # (HW*16, c2)
        y = self.up_act2(y if high_res is None else y + high_res[1])
        if multimask is None:
            return self._to_image(hyper @ y.t()), iou                      # (4, m, m), (4,)
        best = torch.where(multimask, torch.argmax(iou[1:]) + 1, torch.zeros((), dtype=torch.long, device=iou.device))
        return self._to_image((hyper[best] @ y.t())[None]), iou, best

    def _to_image(self, m):
        """(k, HW*16) logits, columns ordered (i, j, di, dj, ei, ej) -> (k, 4g, 4g) with
        pixel (4i + 2di + ei, 4j + 2dj + ej)."""
        g, k = self.g, m.shape[0]
        return m.reshape(k, g, g, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4, 6).reshape(k, 4 * g, 4 * g)

    def _ln(self, norm, x):
        return F.layer_norm(x, (self.C,), norm.weight, norm.bias, norm.eps)

    def _tok_to_img_kv(self, attn, q_in, k, v):
        """Tokens (T, C) attend to the image with ready keys/values k, v (HW, Ci)."""
        nh = self.nh
        q = F.linear(q_in, attn.q_proj.weight, attn.q_proj.bias) * self.scale
        T, ci = q.shape
        d = ci // nh
        s = torch.bmm(q.reshape(T, nh, d).transpose(0, 1), k.reshape(-1, nh, d).permute(1, 2, 0))
        p = torch.softmax(s, dim=-1)                                       # (nh, T, HW)
        o = torch.bmm(p, v.reshape(-1, nh, d).transpose(0, 1))             # (nh, T, d)
        return F.linear(o.transpose(0, 1).reshape(T, ci), attn.out_proj.weight, attn.out_proj.bias)

    def _tok_to_img(self, attn, q_in, kp, x):
        """Tokens attend to image tokens x (HW, C) with keys from kp = x + pe; the key and value
        projections are applied on the token side (softmax rows sum to 1, so the value bias
        passes through)."""
        nh = self.nh
        q = F.linear(q_in, attn.q_proj.weight, attn.q_proj.bias) * self.scale
        T, ci = q.shape
        d = ci // nh
        qh = q.reshape(T, nh, d).transpose(0, 1)                           # (nh, T, d)
        qk = torch.bmm(qh, _heads_w(attn.k_proj.weight, nh)).reshape(nh * T, -1)            # (nh*T, C)
        qb = (qh * attn.k_proj.bias.reshape(nh, 1, d)).sum(-1).reshape(nh * T, 1)
        p = torch.softmax(torch.addmm(qb, qk, kp.t()), dim=-1)             # (nh*T, HW)
        r = (p @ x).reshape(nh, T, -1)                                     # (nh, T, C)
        o = torch.bmm(r, _heads_w(attn.v_proj.weight, nh).transpose(1, 2)) + attn.v_proj.bias.reshape(nh, 1, d)
        return F.linear(o.transpose(0, 1).reshape(T, ci), attn.out_proj.weight, attn.out_proj.bias)

    def _img_to_tok(self, attn, s, queries, keys):
        """Image tokens ``keys`` (HW, C) attend to the tokens, residual included; s: (nh*T, HW) or
        (nh, T, HW) scaled scores (keys-major). Returns keys + attention output, (HW, C).

        Softmax over the token axis is written out (max, exp, sum over axis 1 of (nh, T, HW)):
        onnxruntime's Softmax on a non-last axis transposes twice. The output projection is
        folded into the values (``u``) and its bias into ``u`` too: each head's weights sum to 1,
        so adding ``bias / nh`` to every row of ``u`` adds ``bias`` once; the residual enters
        the same matrix product."""
        nh = self.nh
        v = F.linear(queries, attn.v_proj.weight, attn.v_proj.bias)        # (T, Ci)
        T, ci = v.shape
        d = ci // nh
        s = s.reshape(nh, T, -1)
        e = torch.exp(s - s.amax(dim=1, keepdim=True))
        p = (e / e.sum(dim=1, keepdim=True)).reshape(nh * T, -1)            # (nh*T, HW)
        wo = attn.out_proj.weight.reshape(-1, nh, d).permute(1, 2, 0)      # (nh, d, C)
        u = torch.bmm(v.reshape(T, nh, d).transpose(0, 1), wo).reshape(nh * T, -1)          # (nh*T, C)
        return torch.addmm(keys, p.t(), u + attn.out_proj.bias / nh)


#: the two-way transformers the restructuring reproduces (module, class)
TRANSFORMERS = {("segment_anything.modeling.transformer", "TwoWayTransformer"),
                ("sam2.modeling.sam.transformer", "TwoWayTransformer")}


def _check_structure(pe_mod, dec) -> None:
    """The restructuring assumes segment_anything's (or sam2's, of the same structure) modules;
    refuse anything else."""
    tr = dec.transformer
    md, up = pe_mod.mask_downscaling, dec.output_upscaling
    kind = (type(tr).__module__, type(tr).__name__)
    ok = (kind in TRANSFORMERS and len(tr.layers) >= 1
          and tr.layers[0].skip_first_layer_pe and not any(l.skip_first_layer_pe for l in tr.layers[1:])
          and isinstance(md[-1], nn.Conv2d) and tuple(md[-1].kernel_size) == (1, 1)
          and len(up) == 5 and all(isinstance(up[i], nn.ConvTranspose2d) for i in (0, 3))
          and all(tuple(up[i].kernel_size) == (2, 2) and tuple(up[i].stride) == (2, 2) for i in (0, 3))
          and tuple(pe_mod.mask_input_size) == tuple(4 * s for s in pe_mod.image_embedding_size)
          and len({int(p.weight.shape[0]) for p in (tr.layers[0].cross_attn_token_to_image.k_proj,
                                                    tr.layers[0].cross_attn_token_to_image.v_proj,
                                                    tr.layers[0].cross_attn_image_to_token.q_proj)}) == 1)
    if not ok:
        raise ValueError("SAM decoder of an unexpected structure: use SAM's own predict")
