"""macl: multi-label contrastive learning (MACL and its baselines) for remote-sensing image retrieval.

Library layer: :mod:`macl.losses`, :mod:`macl.metrics`, :mod:`macl.data`, :mod:`macl.models`,
:mod:`macl.index`. On top: :mod:`macl.train`, :mod:`macl.evaluate`, :mod:`macl.pipeline`,
:mod:`macl.report` and the ``macl`` command (:mod:`macl.cli`).
"""

__version__ = "0.1.0"
