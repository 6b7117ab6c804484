"""With negatives gathered across 2 gloo processes, loss and gradients equal one process on the whole batch."""
import os
from functools import partial

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from helpers import ddp_averaged, free_port
from hvl.core.models.losses import hierarchical_loss, infonce, milnce, sigmoid_milnce, sigmoid_pairs, text_keys

pytestmark = pytest.mark.distributed

B, D, K = 4, 6, 2


def _data():
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(2 * B, 10, generator=g), "y": torch.randn(2 * B, 10, generator=g),
            "z": torch.randn(2 * B, K, 10, generator=g), "mask": torch.rand(2 * B, K, generator=g) > 0.3,
            # same-text duplicates within a rank (rows 0, 3) and across ranks (rows 1, 5; kids of rows 2, 6)
            "keys": text_keys(["a", "b", "c", "a", "d", "b", "e", "f"]),
            "kid_keys": text_keys([f"k{i}" for i in range(2 * B * K)]).view(2 * B, K)}


def _with_shared_kid(d):
    d["kid_keys"][6, 0] = d["kid_keys"][2, 0]
    return d


def _losses(wv, wt, d, rows):
    v = F.normalize(d["x"][rows] @ wv, dim=-1)
    t = F.normalize(d["y"][rows] @ wt, dim=-1)
    kids = F.normalize(d["z"][rows] @ wt, dim=-1)
    mask = d["mask"][rows].clone()
    mask[:, 0] = True
    keys, kid_keys = d["keys"][rows], d["kid_keys"][rows]
    return {"infonce": infonce(v, t, 5.0), "milnce": milnce(v, kids, mask, 5.0),
            "hier": hierarchical_loss(v, t, kids, mask, 5.0), "infonce_keyed": infonce(v, t, 5.0, keys),
            "milnce_keyed": milnce(v, kids, mask, 5.0, kid_keys),
            "hier_keyed": hierarchical_loss(v, t, kids, mask, 5.0, parent_keys=keys, child_keys=keys),
            "sigmoid_keyed": sigmoid_pairs(v, t, 5.0, keys, bias=-2.0),
            "sigmoid_milnce_keyed": sigmoid_milnce(v, kids, mask, 5.0, kid_keys, bias=-2.0),
            "hier_sigmoid": hierarchical_loss(v, t, kids, mask, 5.0, parent_keys=keys, child_keys=keys,
                                                 pair=partial(sigmoid_pairs, bias=-2.0))}


NAMES = ("infonce", "milnce", "hier", "infonce_keyed", "milnce_keyed", "hier_keyed", "sigmoid_keyed",
         "sigmoid_milnce_keyed", "hier_sigmoid")


def _params():
    g = torch.Generator().manual_seed(1)
    return torch.randn(10, D, generator=g), torch.randn(10, D, generator=g)


def _worker(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    d = _with_shared_kid(_data())
    res = {}
    for name in NAMES:
        wv, wt = (p.clone().requires_grad_() for p in _params())
        res[name] = ddp_averaged(_losses(wv, wt, d, slice(rank * B, (rank + 1) * B))[name], (wv, wt))
    out[rank] = res
    dist.destroy_process_group()



def test_gathered_negatives_match_single_process():
    d = _with_shared_kid(_data())
    single = {}
    for name in NAMES:
        wv, wt = (p.clone().requires_grad_() for p in _params())
        loss = _losses(wv, wt, d, slice(0, 2 * B))[name]
        loss.backward()
        single[name] = (loss.detach(), wv.grad, wt.grad)
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(free_port(), out), nprocs=2, join=True)
    for rank in (0, 1):
        for name, ref in single.items():
            for got, want in zip(out[rank][name], ref):
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=f"{name} rank {rank}")
