"""The blind membership baseline: how separable members and non-members are without any model.

Das, Zhang & Tramer (2024, ``ethz-spylab/Blind-MIA``) showed that a bag-of-words classifier that never
sees the model beats published attacks on several MIA benchmarks: when the two sets differ in topic,
date or style, an MIA figure measures the split, not memorization. This is their idea at its simplest:

* features: word counts (scikit-learn ``CountVectorizer``, lowercased, every run of word characters a
  token, so Hangul words and Latin words are tokens alike), unigrams and bigrams;
* classifier: L2-regularized logistic regression (``LogisticRegression``, C = 1);
* score: the out-of-fold decision value from stratified k-fold cross-validation (k = 5, or the size of
  the smaller class when that is below 5), so every text is scored by a model that never saw it.
  ``mia_auc_blind`` is the ROC AUC of these pooled out-of-fold scores (members positive), with the same
  interval as every other MIA score (memorization/mia.py). ~0.5: the split is not separable from the
  text alone; well above 0.5: read every MIA figure of the run against it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = ["blind_scores", "BLIND_FOLDS"]

BLIND_FOLDS = 5


def blind_scores(texts: Sequence[str], member: Sequence[bool], seed: int = 0) -> Optional[list[float]]:
    """Out-of-fold member-likelihood of each text (higher = more member-like); None when a class has < 2 texts."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    y = np.asarray(member, dtype=int)
    if len(texts) != len(y):
        raise ValueError(f"need one label per text. Got {len(y)} labels for {len(texts)} texts.")
    smaller = int(min(y.sum(), len(y) - y.sum()))
    if smaller < 2:
        return None
    model = make_pipeline(CountVectorizer(lowercase=True, token_pattern=r"(?u)\b\w+\b", ngram_range=(1, 2)),
                          LogisticRegression(C=1.0, max_iter=1000))
    folds = StratifiedKFold(n_splits=min(BLIND_FOLDS, smaller), shuffle=True, random_state=seed)
    scores = cross_val_predict(model, list(texts), y, cv=folds, method="decision_function")
    return [float(v) for v in scores]
