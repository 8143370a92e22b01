"""Naive reference computations for the loss tests, written independently of the package (loops, float64)."""

import math

import numpy as np


def naive_video_text_contrastive(vision, text, temperature, sample_ids):
    """½ (mean_i CE(v_i → texts) + mean_i CE(t_i → videos)) with targets uniform over equal sample ids."""
    vision = np.asarray(vision, dtype=np.float64)
    text = np.asarray(text, dtype=np.float64)
    ids = list(np.asarray(sample_ids))
    n = len(ids)

    def unit(x):
        return x / math.sqrt(float((x * x).sum()))

    vision = [unit(v) for v in vision]
    text = [unit(t) for t in text]

    def direction(queries, keys):
        total = 0.0
        for i in range(n):
            logits = [float(queries[i] @ keys[j]) / temperature for j in range(n)]
            top = max(logits)
            log_normaliser = top + math.log(sum(math.exp(value - top) for value in logits))
            positives = [j for j in range(n) if ids[j] == ids[i]]
            total += -sum(logits[j] - log_normaliser for j in positives) / len(positives)
        return total / n

    return 0.5 * (direction(vision, text) + direction(text, vision))
