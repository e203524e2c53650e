"""amdim-public's loss (``costs.py``: ``NCE_MI_MULTI._model_scores``, ``LossMultiNCE``), as
plain tensor code on channels-first maps: the stand-in of ``amdim_step.py`` and the
reference of ``tests/image/test_image_amdim_loss.py`` (github.com/Philip-Bachman/amdim-public).

Its mask tricks are kept: positives masked into the negative set at ``-tclip`` and excluded
by ``mask_neg``, the random 5x5 source location of ``_sample_src_ftr`` (drawn with the
global generator, in the public code's order), and the loss AMDIM optimises:
``loss_1t5 + loss_1t7 + loss_5t5 + lgt_reg``.
"""

from __future__ import annotations

import torch

TCLIP = 20.0


def tanh_clip(x, clip_val):
    return clip_val * torch.tanh((1.0 / clip_val) * x)


def model_scores(r_src, r_trg, mask_mat, lam):
    """``NCE_MI_MULTI._model_scores`` + ``_loss_g2l``."""
    n_batch_gpu, n_batch = mask_mat.shape
    n_locs = r_trg.size(1) // n_batch
    n_rkhs = r_src.size(1)
    mask_pos = mask_mat.unsqueeze(dim=2).expand(-1, -1, n_locs).float()
    mask_neg = 1.0 - mask_pos
    raw_scores = torch.mm(r_src, r_trg).float().reshape(n_batch_gpu, n_batch, n_locs)
    raw_scores = raw_scores / n_rkhs ** 0.5
    lgt_reg = lam * (raw_scores ** 2.0).mean()
    raw_scores = tanh_clip(raw_scores, TCLIP)
    pos_scores = (mask_pos * raw_scores).sum(dim=1)
    neg_scores = (mask_neg * raw_scores) - (TCLIP * mask_pos)
    neg_scores = neg_scores.reshape(n_batch_gpu, -1)
    mask_neg = mask_neg.reshape(n_batch_gpu, -1)
    neg_maxes = torch.max(neg_scores, dim=1, keepdim=True)[0]
    neg_sumexp = (mask_neg * torch.exp(neg_scores - neg_maxes)).sum(dim=1, keepdim=True)
    all_logsumexp = torch.log(torch.exp(pos_scores - neg_maxes) + neg_sumexp)
    nce_scores = (pos_scores - neg_maxes) - all_logsumexp
    return -nce_scores.mean(), lgt_reg


def sample_src_ftr(r_cnv, masks):
    n_batch, n_rkhs = r_cnv.shape[:2]
    if masks is not None:
        mask_idx = torch.randint(0, masks.size(0), (n_batch,))
        r_cnv = torch.masked_select(r_cnv, masks[mask_idx])
    return r_cnv.reshape(n_batch, n_rkhs)


def ref_loss(r1_x1, r5_x1, r7_x1, r1_x2, r5_x2, r7_x2, lam):
    """``LossMultiNCE.forward`` on one device, summed as the public code optimises it."""
    n_batch, n_rkhs = r1_x1.shape[:2]
    mask_mat = torch.eye(n_batch, device=r1_x1.device)
    masks_r5 = torch.zeros(5, 5, 1, 5, 5, dtype=torch.uint8)
    for i in range(5):
        for j in range(5):
            masks_r5[i, j, 0, i, j] = 1
    masks_r5 = masks_r5.reshape(-1, 1, 5, 5).bool().to(r1_x1.device)
    r1_src_1, r5_src_1 = sample_src_ftr(r1_x1, None), sample_src_ftr(r5_x1, masks_r5)
    r1_src_2, r5_src_2 = sample_src_ftr(r1_x2, None), sample_src_ftr(r5_x2, masks_r5)
    trg = {name: r.permute(1, 0, 2, 3).reshape(n_rkhs, -1)
           for name, r in (("5_1", r5_x1), ("7_1", r7_x1), ("5_2", r5_x2), ("7_2", r7_x2))}
    total = 0.0
    for src_1, src_2, t in ((r1_src_1, r1_src_2, "5"), (r1_src_1, r1_src_2, "7"), (r5_src_1, r5_src_2, "5")):
        l1, g1 = model_scores(src_1, trg[f"{t}_2"], mask_mat, lam)
        l2, g2 = model_scores(src_2, trg[f"{t}_1"], mask_mat, lam)
        total = total + 0.5 * (l1 + l2) + 0.5 * (g1 + g2)
    return total
