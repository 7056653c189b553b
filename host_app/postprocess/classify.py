"""Classification: the top-k classes of each classifier output, with their labels.

    classify[,top-k:K][,outputs:[a, b]][,labels:[cat, dog, ...]][,softmax:no|yes]

`outputs` defaults to the network's classifier outputs (labels recorded for them, or a softmax
producing a vector: host_app.pipeline.is_classifier); `labels` defaults to the labels recorded
in the HAR ("class i" without); `softmax:yes` turns raw logits into probabilities first. Without
top-k, host-app infer's --top-k decides (3).
"""
from __future__ import annotations

import numpy as np

from .results import Result, TopClass
from .spec import Items, PostProcess, output_array

DEFAULT_TOP_K = 3


def top_k(scores: np.ndarray, k: int, labels: list[str] | None = None) -> list[TopClass]:
    """The k best classes of one score vector, best first (ties: the lower index first)."""
    row = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-row, kind="stable")[:max(0, k)]
    return [TopClass(int(j), label_of(labels, int(j)), float(row[j])) for j in order]


def label_of(labels: list[str] | None, index: int) -> str:
    return labels[index] if labels and 0 <= index < len(labels) else f"class {index}"


class Classify(PostProcess):
    kind = "classify"
    keys = "top-k, outputs, labels, softmax"
    detector = False

    def __init__(self, text, where, preset=None, *, k: int | None = None,
                 outputs: list[str] | None = None, labels: list[str] | None = None,
                 softmax: bool = False):
        super().__init__(text, where, preset)
        self.k = k
        self.names = outputs
        self.labels = labels
        self.softmax = softmax

    @classmethod
    def from_items(cls, text: str, where: str, preset, items: Items, base_dir=None) -> Classify:
        post = cls(text, where, preset, k=items.number("top-k", None, lo=1, integer=True),
                   outputs=items.words("outputs", None), labels=items.words("labels", None),
                   softmax=items.flag("softmax", False))
        if post.labels is not None and post.names is not None and len(post.names) != 1:
            raise items.error("labels", "labels apply to one output; give outputs:[NAME] with "
                                        "one name, or record labels per output with host-app "
                                        "parse --labels")
        items.done(("top-k", "outputs", "labels", "softmax"))
        return post

    def _targets(self, outputs=None) -> list[str]:
        if self.names is not None:
            return list(self.names)
        if self.network is not None:
            return list(self.network.classifiers)
        return list(outputs or ())

    def outputs_used(self) -> list[str]:
        return self._targets()

    def _check(self, network) -> None:
        for name in self.names or ():
            if name not in network.outputs:
                raise self.error(f"classify: no output '{name}' in network '{network.name}' (its "
                                 f"outputs: {', '.join(network.outputs)})")
        if self.labels is not None:
            (name,) = self._targets() or [None]
            if name is not None:
                classes = int(np.prod(network.outputs[name]))
                if classes != len(self.labels):
                    raise self.error(f"classify: {len(self.labels)} labels for output '{name}' "
                                     f"of {classes} classes; give {classes} labels")

    def labels_for(self, name: str) -> list[str] | None:
        if self.labels is not None:
            return self.labels
        return (self.network.labels.get(name) if self.network else None)

    def _apply(self, outputs, n, maps) -> list[Result]:
        results = [Result() for _ in range(n)]
        for name in self._targets(outputs):
            x = output_array(self, outputs, name).reshape(n, -1).astype(np.float64)
            if self.softmax:
                x = np.exp(x - x.max(axis=1, keepdims=True))
                x /= x.sum(axis=1, keepdims=True)
            k = self.k or DEFAULT_TOP_K
            labels = self.labels_for(name)
            for i in range(n):
                results[i].top_k[name] = top_k(x[i], k, labels)
        return results
