"""Score functions of a BiEncoder (light: no torch import).

* ``dot``: s(q, p) = <v_q, v_p>, the paper's (Fang et al., Scaling Laws for Dense Retrieval,
  SIGIR 2024, Section 3).
* ``cos``: s(q, p) = scale * cos(v_q, v_p); the embeddings are L2-normalised and ``scale`` is a
  fixed, declared multiplier (the model's ``score_scale``).
"""

from __future__ import annotations

SIMILARITIES = ("dot", "cos")
DEFAULT_COS_SCALE = 20.0  # measured: scratch models on SQuAD learn with cos x 20 (train docs)
