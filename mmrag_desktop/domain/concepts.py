"""Personal concepts ("Rex", "grandma's kitchen"): a linear probe learned from a few example
photos the user named, on the embeddings the library already holds.

A concept is its examples: content hashes, each a yes (the user named it, or confirmed a
suggestion) or a no (a suggestion the user rejected). Nothing else is stored, so a concept
survives a model change by being learned again from its examples' new embeddings, in well
under a second, without embedding anything.

The probe is logistic regression (a linear probe, as in Radford et al., "Learning
Transferable Visual Models From Natural Language Supervision", 2021, §3.2) on the
L2-normalised image embeddings: the yeses against the noes and a sample of the rest of the
library (most photos are not Rex), the two classes weighted equally, its weights held
toward the examples' mean direction (:func:`learn`), fitted by Newton's method
(iteratively reweighted least squares). Its probability is a photo's confidence
that it shows the concept; as the probe is linear, ranking the library by it is ranking by
cosine similarity to the probe's weight vector, which the HNSW index answers directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..core.errors import MmragError

BACKGROUND = 2000
"""Photos of the library sampled as the rest (negatives) for each probe."""
REJECTED_WEIGHT = 5.0
"""A rejected suggestion counts as this many sampled photos: the user said so."""
PRIOR = 1e-3
"""How strongly the weights are held to the examples' mean direction, per unit of total
sample weight (:func:`learn`; chosen on shots of 8 coco-mini subjects)."""
NEWTON_STEPS = 25
TAGGED = 0.5
"""A photo is tagged with a concept at this probability or above."""


class ConceptError(MmragError, ValueError):
    """A concept cannot be learned or changed as asked; the message says why."""


@dataclass
class Probe:
    """A learned concept: ``p(x) = sigmoid(weights · x + bias)`` for an L2-normalised
    embedding x ((d,) float32). ``examples`` and ``rejected`` count what it was learned from
    (the examples whose photos have an embedding under the current model)."""

    name: str
    weights: np.ndarray
    bias: float
    examples: int
    rejected: int

    def probability(self, vectors: np.ndarray) -> np.ndarray:
        """Confidence that each photo shows the concept: (n, d) float32 → (n,) float64 in
        [0, 1]."""
        return _sigmoid(vectors.astype(np.float64) @ self.weights + self.bias)

    @property
    def direction(self) -> np.ndarray:
        """The weights, L2-normalised ((d,) float32): a query vector whose cosine ranking
        is this probe's ranking."""
        return (self.weights / max(np.linalg.norm(self.weights), 1e-12)).astype(np.float32)

    def cosine_for(self, probability: float) -> float:
        """The cosine similarity to :attr:`direction` at which the probability is
        *probability*."""
        logit = np.log(probability / (1 - probability))
        return float((logit - self.bias) / max(np.linalg.norm(self.weights), 1e-12))


def learn(name: str, examples: np.ndarray, rejected: np.ndarray,
          background: np.ndarray) -> Probe:
    """Fit a concept's probe: logistic regression whose weights are drawn toward the
    examples' mean direction (the class prototype of Snell et al., "Prototypical Networks",
    arXiv:1703.05175), scaled by a one-dimensional fit along it. With a handful of examples
    the probe stays close to "more like these", which few examples can support; every
    answer the user gives moves it by what the data then say.

    Args:
        examples: (p, d) float32 embeddings of the yeses (p ≥ 1).
        rejected: (q, d) float32 embeddings of the noes (q ≥ 0).
        background: (r, d) float32 embeddings of other photos of the library.

    Raises:
        ConceptError: no example, or nothing to tell the examples from.
    """
    if len(examples) == 0:
        raise ConceptError(f"“{name}” has no example photo with an embedding under this "
                           "model yet (index the library, or add examples)")
    if len(rejected) + len(background) == 0:
        raise ConceptError(f"“{name}” needs other photos in the library to tell its "
                           "examples from")
    x = np.concatenate([examples, rejected, background]).astype(np.float64)
    centre = x[len(examples):].mean(axis=0)  # conditioning only: the bias absorbs it
    x -= centre
    y = np.concatenate([np.ones(len(examples)), np.zeros(len(rejected) + len(background))])
    weight = np.concatenate([np.ones(len(examples)), np.full(len(rejected), REJECTED_WEIGHT),
                             np.ones(len(background))])
    weight[:len(examples)] *= weight[len(examples):].sum() / len(examples)  # equal classes
    prototype = examples.mean(axis=0).astype(np.float64)
    prototype /= max(np.linalg.norm(prototype), 1e-12)
    scale, bias = _fit(x @ prototype, y, weight, np.zeros(1), 1e-3)
    weights, intercept = _fit(x, y, weight, scale[0] * prototype, PRIOR * weight.sum(), bias)
    # w · (x - centre) + b = w · x + (b - w · centre): a probe on the raw embeddings.
    return Probe(name, weights, float(intercept - weights @ centre), len(examples),
                 len(rejected))


def _fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray, prior: np.ndarray,
         penalty: float, bias: float = 0.0) -> tuple[np.ndarray, float]:
    """Weighted logistic regression on (n, d) *x* with the penalty
    ``penalty · |w - prior|²`` (the bias nearly free), by Newton's method with step
    halving (a separable few-shot problem sends a plain Newton step to infinity), started
    at (*prior*, *bias*): (w (d,), b)."""
    if x.ndim == 1:
        x = x[:, None]
    x1 = np.hstack([x, np.ones((len(x), 1))])
    shrink = np.append(np.full(x.shape[1], penalty), 1e-6)
    centre = np.append(prior, 0.0)

    def loss(theta: np.ndarray) -> float:
        z = x1 @ theta
        # -log p for y = 1, -log (1 - p) for y = 0, without overflow
        return float(weight @ (np.logaddexp(0, z) - y * z)
                     + 0.5 * shrink @ (theta - centre) ** 2)

    theta = np.append(prior, bias)
    current = loss(theta)
    for _ in range(NEWTON_STEPS):
        p = _sigmoid(x1 @ theta)
        gradient = x1.T @ (weight * (p - y)) + shrink * (theta - centre)
        hessian = (x1 * (weight * p * (1 - p))[:, None]).T @ x1 + np.diag(shrink)
        step = np.linalg.solve(hessian, gradient)
        for _ in range(30):
            if (trial := loss(theta - step)) <= current:
                break
            step /= 2
        else:
            break
        theta, improved, current = theta - step, current - trial, trial
        if improved < 1e-9 * max(current, 1.0):
            break
    return theta[:-1], float(theta[-1])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))  # no overflow for large |z|


def mentioned(text: str, names: list[str]) -> tuple[list[str], str]:
    """The concepts named in a query's text, as whole words (case-insensitive; the longest
    name first, so "grandma's kitchen" wins over "kitchen"), and the text without them.

    >>> mentioned("Rex at the beach", ["rex"])
    (['rex'], 'at the beach')
    """
    found = []
    for name in sorted(names, key=len, reverse=True):
        pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
        if pattern.search(text):
            found.append(name)
            text = pattern.sub(" ", text)
    return found, " ".join(text.split())
