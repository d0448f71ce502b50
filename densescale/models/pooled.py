"""BERT's feed-forward block for CPU training, on buffers reused from step to step.

On CPU every large activation is a fresh allocation: glibc maps each block over 32 MB anew
and returns it when freed, so every step page-faults its activations in again (a bert-mini
training step: 60,000-200,000 minor faults, 0.1-0.8 s of system time; bench/RESULTS.md, issue
16). The feed-forward block (``dense -> GELU -> dense``, 2 x [tokens, intermediate] floats per
layer, the largest activations beside the attention matrices) here runs as one autograd
function whose intermediate activations and gradients live in a per-thread pool of buffers:
a buffer is handed out again once nothing else holds it (autograd has released the saved
tensors), so after the first steps the block allocates nothing large.

The arithmetic is torch's, op for op: ``addmm`` with the bias, exact GELU, ``addmm``; in
backward the products autograd's ``AddmmBackward`` computes (``g @ W`` for the input,
``g^T @ x`` for the weight, ``g.sum(0)`` for the bias) and ``gelu_backward``. So the outputs
and gradients are bit for bit those of the Hugging Face module (tested), and nothing else
changes: dropout after the block stays the module's own, in its place in the random stream.

``install(model)`` applies it to every BERT-family layer of a model (BERT, RoBERTa, ELECTRA,
XLM-R layouts with exact GELU); ``uninstall(model)`` restores the layers and frees the pool.
It acts only where it can be exact: CPU, float32, grad enabled, training mode, no autocast;
anything else runs the module's own code.
"""

from __future__ import annotations

import threading
from types import MethodType
from typing import Any

import torch
from torch import nn

_OUTPUTS = {"BertOutput", "RobertaOutput", "ElectraOutput", "XLMRobertaOutput",
            "CamembertOutput"}  # dense -> dropout -> LayerNorm(h + input)
_INTERMEDIATES = {"BertIntermediate", "RobertaIntermediate", "ElectraIntermediate",
                  "XLMRobertaIntermediate", "CamembertIntermediate"}  # dense -> act
_LOCAL = threading.local()


def _use_count(t: torch.Tensor) -> int | None:
    """References to ``t``'s storage, counting the temporary storage object of this call;
    None where torch does not expose the count."""
    fn = getattr(torch._C, "_storage_Use_Count", None)
    return None if fn is None else int(fn(t.untyped_storage()._cdata))


class BufferPool:
    """float32 CPU buffers handed out again once no tensor but the pool's holds them.

    ``take(shape)`` returns a view of the smallest free buffer with room (a new one if none):
    the view, and whatever autograd saves of it, keeps the buffer busy; when those are gone
    the buffer is free again. A miss drops the free buffers too small for it, so the pool holds
    at most as many buffers as were ever busy at once, each as large as the largest request it
    served. ``clear()`` lets them all go."""

    def __init__(self) -> None:
        self._bufs: list[torch.Tensor] = []

    def take(self, shape: tuple[int, ...]) -> torch.Tensor:
        n = 1
        for d in shape:
            n *= int(d)
        best = None
        for b in self._bufs:
            if b.numel() >= n and (best is None or b.numel() < best.numel()) and self._free(b):
                best = b
        if best is None:
            self._bufs = [b for b in self._bufs if b.numel() >= n or not self._free(b)]
            best = torch.empty(n, dtype=torch.float32)
            self._bufs.append(best)
        return best[:n].view(shape)

    @staticmethod
    def _free(b: torch.Tensor) -> bool:
        return _use_count(b) == 2  # the pool's tensor and this call's storage object

    def clear(self) -> None:
        self._bufs = []

    @property
    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._bufs)


def pool() -> BufferPool:
    """This thread's pool."""
    p = getattr(_LOCAL, "pool", None)
    if p is None:
        p = _LOCAL.pool = BufferPool()
    return p


class _FeedForward(torch.autograd.Function):
    """``dense2(gelu(dense1(x)))`` with the intermediate tensors in pooled buffers."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor,
                w2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
        bufs = pool()
        x2 = x.reshape(-1, x.shape[-1])
        shape = (x2.shape[0], w1.shape[0])
        h = torch.addmm(b1, x2, w1.t(), out=bufs.take(shape))  # as F.linear on [.., H]
        a = torch.ops.aten.gelu.out(h, out=bufs.take(shape))
        out = torch.addmm(b2, a, w2.t())
        ctx.save_for_backward(x2, h, a, w1, w2)
        ctx.x_shape = x.shape
        return out.view(*x.shape[:-1], w2.shape[0])

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x2, h, a, w1, w2 = ctx.saved_tensors
        g = g.reshape(-1, g.shape[-1])
        need = ctx.needs_input_grad
        gw2 = g.t().mm(a) if need[3] else None  # AddmmBackward's products, in its layouts
        gb2 = g.sum(0) if need[4] else None
        gh = torch.mm(g, w2, out=pool().take(h.shape))
        gh = torch.ops.aten.gelu_backward.grad_input(gh, h, grad_input=gh)  # in place
        gw1 = gh.t().mm(x2) if need[1] else None
        gb1 = gh.sum(0) if need[2] else None
        gx = gh.mm(w1).view(ctx.x_shape) if need[0] else None
        return gx, gw1, gb1, gw2, gb2


def _exact_gelu(act: Any) -> bool:
    if isinstance(act, nn.GELU):
        return act.approximate == "none"
    return type(act).__name__ == "GELUActivation" and getattr(act, "act", None) is \
        nn.functional.gelu


def supports(layer: nn.Module) -> bool:
    """A BERT-family layer whose feed-forward block this module computes exactly."""
    inter, out = getattr(layer, "intermediate", None), getattr(layer, "output", None)
    return (callable(getattr(layer, "feed_forward_chunk", None))
            and type(inter).__name__ in _INTERMEDIATES and type(out).__name__ in _OUTPUTS
            and type(getattr(inter, "dense", None)) is nn.Linear
            and type(getattr(out, "dense", None)) is nn.Linear
            and inter.dense.bias is not None and out.dense.bias is not None
            and _exact_gelu(getattr(inter, "intermediate_act_fn", None)))


def _applies(x: torch.Tensor, layer: nn.Module) -> bool:
    return (layer.training and torch.is_grad_enabled() and x.device.type == "cpu"
            and x.dtype == torch.float32 and layer.intermediate.dense.weight.dtype == x.dtype
            and not torch.is_autocast_enabled("cpu") and _use_count(x) is not None)


def _pooled_feed_forward_chunk(self: nn.Module, attention_output: torch.Tensor) -> torch.Tensor:
    """A layer's ``feed_forward_chunk`` (bound to it by ``install``): the pooled block where
    it is exact, the class's own method elsewhere."""
    if not _applies(attention_output, self):
        return type(self).feed_forward_chunk(self, attention_output)
    inter, out = self.intermediate, self.output
    h = _FeedForward.apply(attention_output, inter.dense.weight, inter.dense.bias,
                           out.dense.weight, out.dense.bias)
    return out.LayerNorm(out.dropout(h) + attention_output)


def _installed(m: nn.Module) -> bool:
    f = m.__dict__.get("feed_forward_chunk")
    return isinstance(f, MethodType) and f.__func__ is _pooled_feed_forward_chunk


def install(model: nn.Module) -> int:
    """Run the feed-forward block of every supported layer of ``model`` on pooled buffers (in
    place); returns how many layers."""
    n = 0
    for m in model.modules():
        if not _installed(m) and supports(m):  # a bound method: deepcopy rebinds it
            m.feed_forward_chunk = MethodType(_pooled_feed_forward_chunk, m)
            n += 1
    return n


def uninstall(model: nn.Module) -> nn.Module:
    """Undo ``install`` and free this thread's pool."""
    for m in model.modules():
        if _installed(m):
            del m.feed_forward_chunk
    pool().clear()
    return model
