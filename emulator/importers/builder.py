"""From a framework's op graph to an HN graph and native params: the folding every importer shares.

Importers translate source ops one by one into nodes here: HN layer types, plus three pre-fold
kinds that never reach the HN:
  affine     y = x * scale + offset per channel (last axis): batch norm, Rescaling, constant
             mul / add / sub / div
  transpose  a permutation (batch axis fixed)
  identity   dropout and friends
`build()` then folds, in this order:
  1. affine into the preceding conv / dw / deconv / dense when that layer is linear and feeds
     only it (batch norm folding); any other affine becomes a `normalization` layer;
  2. activations into the preceding conv / dw / deconv / dense / ew_* layer (fused activation),
     x * sigmoid(x) into silu first;
  3. transposes (and reshapes) that only feed dense layers into the dense kernels' row order;
  4. reshapes that change nothing, and identities, away;
and names layers the way Hailo's parser does: a type prefix and a running index per type in
topological order (input_layer1, conv1, dw1, dense1, ew_add1, output_layer1...), keeping the
source names in original_names. The result is validated as any loaded HN is.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..errors import ModelImportError, UnsupportedOpError
from ..hn import MAC_TYPES, HNGraph

FUSABLE_ACT_HOSTS = MAC_TYPES + ("ew_add", "ew_sub", "ew_mult")


@dataclasses.dataclass
class Node:
    id: int
    kind: str
    inputs: list[int]
    shape: list[int]  # output shape, batch -1
    params: dict[str, Any]
    weights: dict[str, np.ndarray]
    source: list[str]


class GraphBuilder:
    """Collects nodes in topological order (each node's inputs exist before it)."""

    def __init__(self, source: str):
        self.source = source  # "file.tflite" or "Keras model 'x'", for error messages
        self.nodes: dict[int, Node] = {}
        self.outputs: list[int] = []
        self._next = 0

    def shape(self, nid: int) -> list[int]:
        return list(self.nodes[nid].shape)

    def add(self, kind: str, inputs: list[int], shape: list[int], params: dict | None = None,
            weights: dict[str, np.ndarray] | None = None, source: str | list[str] = ()) -> int:
        shape = [-1] + [int(d) for d in list(shape)[1:]]
        if any(d <= 0 for d in shape[1:]):
            raise ModelImportError(f"{self.source}: node {source!r} has an unknown or empty "
                                   f"dimension in shape {shape}; give the model a fixed input shape")
        nid = self._next
        self._next += 1
        src = [source] if isinstance(source, str) else list(source)
        self.nodes[nid] = Node(nid, kind, list(inputs), shape, dict(params or {}),
                               {k: np.asarray(v, np.float32) for k, v in (weights or {}).items()}, src)
        return nid

    def add_input(self, shape: list[int], source: str) -> int:
        return self.add("input_layer", [], shape, source=source)

    def add_output(self, nid: int) -> None:
        self.outputs.append(nid)

    def add_activation(self, x: int, act: str, source: str, leaky_alpha: float | None = None,
                       alpha: np.ndarray | None = None) -> int:
        """An activation node after x (fused into x's layer later when possible); linear is a no-op."""
        if act == "linear":
            return x
        params = {"activation": act}
        if act == "leaky":
            params["leaky_alpha"] = float(leaky_alpha)
        weights = {}
        if act == "prelu":
            c = self.shape(x)[-1]
            weights["alpha"] = np.broadcast_to(np.asarray(alpha, np.float32).reshape(-1), (c,)).copy() \
                if np.asarray(alpha).size in (1, c) else _bad_alpha(self.source, source, alpha, c)
        return self.add("activation", [x], self.shape(x), params, weights, source)

    def add_affine(self, x: int, scale: Any, offset: Any, source: str) -> int:
        """y = x * scale + offset, scale / offset scalars or per channel (last axis)."""
        c = self.shape(x)[-1]
        s = _per_channel(scale, c, self.source, source)
        o = _per_channel(offset, c, self.source, source)
        return self.add("affine", [x], self.shape(x), {}, {"scale": s, "offset": o}, source)

    # --- folding ---------------------------------------------------------------------------
    def _consumers(self) -> dict[int, list[int]]:
        cons: dict[int, list[int]] = {n: [] for n in self.nodes}
        for n in self.nodes.values():
            for i in n.inputs:
                cons[i].append(n.id)
        return cons

    def _bypass(self, node: Node, replacement: int) -> None:
        """Remove node; whatever consumed it consumes `replacement` instead."""
        for n in self.nodes.values():
            n.inputs = [replacement if i == node.id else i for i in n.inputs]
        self.outputs = [replacement if o == node.id else o for o in self.outputs]
        del self.nodes[node.id]

    def _exclusive(self, producer: int, consumer: int, cons: dict[int, list[int]]) -> bool:
        return cons[producer] == [consumer] and producer not in self.outputs

    def _prune(self) -> None:
        live: set[int] = set()
        stack = list(self.outputs)
        while stack:
            n = stack.pop()
            if n in live:
                continue
            live.add(n)
            stack.extend(self.nodes[n].inputs)
        for n in list(self.nodes):
            if n not in live and self.nodes[n].kind != "input_layer":
                del self.nodes[n]

    def _fold_affines(self) -> None:
        for node in list(self.nodes.values()):
            if node.kind != "affine" or node.id not in self.nodes:
                continue
            cons = self._consumers()
            prod = self.nodes[node.inputs[0]]
            if prod.kind == "affine" and self._exclusive(prod.id, node.id, cons):
                # two affines in a row: merge into the later one
                node.weights["offset"] = prod.weights["offset"] * node.weights["scale"] + node.weights["offset"]
                node.weights["scale"] = prod.weights["scale"] * node.weights["scale"]
                node.source = prod.source + node.source
                node.inputs = list(prod.inputs)
                del self.nodes[prod.id]
                cons = self._consumers()
                prod = self.nodes[node.inputs[0]]
            if (prod.kind in MAC_TYPES and prod.params.get("activation", "linear") == "linear"
                    and self._exclusive(prod.id, node.id, cons)):
                _fold_affine_into(prod, node.weights["scale"], node.weights["offset"])
                prod.params["batch_norm"] = True
                prod.source += node.source
                self._bypass(node, prod.id)
        for node in self.nodes.values():
            if node.kind == "affine":
                s, o = node.weights["scale"], node.weights["offset"]
                if np.any(s == 0):
                    raise UnsupportedOpError(
                        "affine (batch norm / constant mul) with a zero scale", ",".join(node.source),
                        self.source, "a zero per-channel scale not directly after a conv/dense "
                        "cannot be a normalization layer; fold it into a preceding layer")
                node.kind = "normalization"
                node.weights = {"mean": (-o / s).astype(np.float32), "std": (1.0 / s).astype(np.float32)}

    def _fuse_swish(self) -> None:
        for node in list(self.nodes.values()):
            if node.kind != "ew_mult" or node.id not in self.nodes or node.params.get("activation", "linear") != "linear":
                continue
            cons = self._consumers()
            a, b = node.inputs
            for x, s in ((a, b), (b, a)):
                sn = self.nodes[s]
                if (sn.kind == "activation" and sn.params["activation"] == "sigmoid"
                        and sn.inputs == [x] and self._exclusive(s, node.id, cons)
                        and sn.shape == self.nodes[x].shape):
                    node.kind, node.inputs = "activation", [x]
                    node.params = {"activation": "silu"}
                    node.source = sn.source + node.source
                    del self.nodes[s]
                    break

    def _fuse_activations(self) -> None:
        for node in list(self.nodes.values()):
            if node.kind != "activation" or node.id not in self.nodes:
                continue
            cons = self._consumers()
            prod = self.nodes[node.inputs[0]]
            if (prod.kind in FUSABLE_ACT_HOSTS and prod.params.get("activation", "linear") == "linear"
                    and self._exclusive(prod.id, node.id, cons)):
                prod.params.update(node.params)
                prod.weights.update(node.weights)
                prod.source += node.source
                self._bypass(node, prod.id)

    def _fold_transposes(self) -> None:
        for node in list(self.nodes.values()):
            if node.id not in self.nodes:
                continue
            if node.kind == "transpose":
                perm = node.params["perm"]
                in_shape = self.shape(node.inputs[0])
                if perm == list(range(len(perm))):
                    self._bypass(node, node.inputs[0])
                    continue
                denses = self._dense_consumers(node.id)
                if denses is None:
                    raise UnsupportedOpError(
                        "TRANSPOSE/Permute", ",".join(node.source), self.source,
                        f"a transpose {perm} is supported only where it feeds dense layers "
                        f"(through flatten / reshape), which absorb it into their kernels")
                # row r of the dense kernel multiplies element r of flatten(transpose(x));
                # that element is element idx[r] of flatten(x)
                idx = np.arange(math.prod(in_shape[1:])).reshape(in_shape[1:])
                idx = np.transpose(idx, [p - 1 for p in perm[1:]]).reshape(-1)
                for d in denses:
                    dn = self.nodes[d]
                    k = dn.weights["kernel"]
                    newk = np.empty_like(k)
                    newk[idx] = k
                    dn.weights["kernel"] = newk
                    dn.source = node.source + dn.source
                self._skip_to_dense(node, denses)
        for node in list(self.nodes.values()):
            if node.id in self.nodes and node.kind in ("reshape", "identity"):
                src = self.nodes[node.inputs[0]]
                if node.kind == "identity" or node.shape == src.shape:
                    self._bypass(node, src.id)
                elif self._dense_consumers(node.id) is not None:
                    # a dense flattens its input row-major, so a reshape before it changes nothing
                    for d in self._dense_consumers(node.id):
                        self.nodes[d].source = node.source + self.nodes[d].source
                    self._skip_to_dense(node, self._dense_consumers(node.id))

    def _dense_consumers(self, nid: int) -> list[int] | None:
        """The dense layers fed by nid directly or through reshapes only; None if anything else
        consumes it (or it is an output)."""
        if nid in self.outputs:
            return None
        cons = self._consumers()
        out: list[int] = []
        for c in cons[nid]:
            cn = self.nodes[c]
            if cn.kind == "dense":
                out.append(c)
            elif cn.kind == "reshape":
                sub = self._dense_consumers(c)
                if sub is None:
                    return None
                out.extend(sub)
            else:
                return None
        return out or None

    def _skip_to_dense(self, node: Node, denses: list[int]) -> None:
        src = node.inputs[0]
        for d in denses:
            self.nodes[d].inputs = [src]
        self._prune()

    # --- output ----------------------------------------------------------------------------
    def build(self, net_name: str) -> tuple[HNGraph, dict[str, np.ndarray]]:
        if not self.outputs:
            raise ModelImportError(f"{self.source}: the model has no outputs")
        self._prune()
        self._fold_affines()
        self._fuse_swish()
        self._fuse_activations()
        self._fold_transposes()
        self._prune()
        leftovers = [n for n in self.nodes.values() if n.kind in ("affine", "transpose", "identity")]
        if leftovers:
            raise ModelImportError(f"{self.source}: internal folding left {leftovers[0].kind} at "
                                   f"{leftovers[0].source}")
        return self._emit(net_name)

    def _reorder(self) -> None:
        """Depth-first from the outputs in order, operands in order: the order a reader follows
        (first output's branch first), which the running indices of the names then follow."""
        order: list[int] = []
        seen: set[int] = set()
        for i in [n.id for n in self.nodes.values() if n.kind == "input_layer"] + self.outputs:
            stack = [(i, False)]
            while stack:
                nid, done = stack.pop()
                if done:
                    order.append(nid)
                    continue
                if nid in seen:
                    continue
                seen.add(nid)
                stack.append((nid, True))
                for j in reversed(self.nodes[nid].inputs):
                    if j not in seen:
                        stack.append((j, False))
        self.nodes = {i: self.nodes[i] for i in order}

    def _emit(self, net: str) -> tuple[HNGraph, dict[str, np.ndarray]]:
        counters: dict[str, int] = {}
        names: dict[int, str] = {}

        def fresh(kind: str) -> str:
            counters[kind] = counters.get(kind, 0) + 1
            return f"{kind}{counters[kind]}"

        self._reorder()
        for n in self.nodes.values():
            names[n.id] = fresh(n.kind)
        out_names = [fresh("output_layer") for _ in self.outputs]
        consumers: dict[int, list[str]] = {n: [] for n in self.nodes}
        for n in self.nodes.values():
            for i in n.inputs:
                consumers[i].append(names[n.id])
        for o, oname in zip(self.outputs, out_names):
            consumers[o].append(oname)
        layers: dict[str, dict] = {}
        params: dict[str, np.ndarray] = {}
        for n in self.nodes.values():
            lname = names[n.id]
            p = dict(n.params)
            if n.kind in MAC_TYPES:
                p["kernel_shape"] = list(n.weights["kernel"].shape)
                if "bias" not in n.weights:
                    n.weights["bias"] = np.zeros(_cout(n), np.float32)
            p.setdefault("activation", "linear") if n.kind in FUSABLE_ACT_HOSTS else None
            outs = consumers[n.id]
            layers[f"{net}/{lname}"] = {
                "type": n.kind,
                "input": [f"{net}/{names[i]}" for i in n.inputs],
                "output": [f"{net}/{c}" for c in outs],
                "input_shapes": [self.nodes[i].shape for i in n.inputs] or [n.shape],
                "output_shapes": [n.shape] * max(1, len(outs)),
                "original_names": list(dict.fromkeys(n.source)),
                "params": p,
            }
            for k, v in n.weights.items():
                params[f"{net}/{lname}/{k}:0"] = np.ascontiguousarray(v, np.float32)
        for o, oname in zip(self.outputs, out_names):
            shp = self.nodes[o].shape
            layers[f"{net}/{oname}"] = {
                "type": "output_layer", "input": [f"{net}/{names[o]}"], "output": [],
                "input_shapes": [shp], "output_shapes": [shp],
                "original_names": list(dict.fromkeys(self.nodes[o].source))[-1:], "params": {},
            }
        d = {"name": net, "net_params": {"output_layers_order": [f"{net}/{o}" for o in out_names],
                                          "source": self.source},
             "layers": layers}
        return HNGraph.from_dict(d, source=self.source), params


# --- helpers ---------------------------------------------------------------------------------

def _cout(n: Node) -> int:
    k = n.weights["kernel"]
    if n.kind == "dw":
        return k.shape[2] * k.shape[3]
    return k.shape[-1]


def _fold_affine_into(n: Node, scale: np.ndarray, offset: np.ndarray) -> None:
    k = n.weights["kernel"].astype(np.float64)
    cout = _cout(n)
    b = n.weights.get("bias", np.zeros(cout, np.float32)).astype(np.float64)
    s = scale.astype(np.float64)
    if n.kind == "dw":
        k = k * s.reshape(k.shape[2], k.shape[3])
    else:
        k = k * s  # out channels are the last axis of conv HWIO, deconv [kh,kw,cin,cout], dense
    n.weights["kernel"] = k.astype(np.float32)
    n.weights["bias"] = (b * s + offset.astype(np.float64)).astype(np.float32)


def _per_channel(v: Any, c: int, source: str, node: str) -> np.ndarray:
    a = np.asarray(v, np.float32)
    if a.size == 1:
        return np.full(c, a.reshape(()), np.float32)
    if a.ndim >= 1 and a.shape[-1] == c and a.size == c:
        return a.reshape(c).copy()
    raise UnsupportedOpError("element-wise op with a constant of shape " + str(list(a.shape)),
                             node, source, f"only scalar or per-channel ({c}) constants are supported")


def _bad_alpha(source: str, node: str, alpha: Any, c: int) -> np.ndarray:
    raise UnsupportedOpError(
        f"PReLU with alphas of shape {list(np.shape(alpha))}", node, source,
        f"alphas must be shared over H and W (one per channel, {c}); use shared_axes=[1, 2]")
