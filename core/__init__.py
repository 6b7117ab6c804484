"""hvl.core: domain-agnostic hierarchical video-language learning.

Read it in the direction data flows: :mod:`~hvl.core.data` (manifests, decoding, transforms, the
DataModule) → :mod:`~hvl.core.models` (encoders, losses, the LightningModule, checkpoints) →
:mod:`~hvl.core.evaluation` (zero-shot, metrics, retrieval) and :mod:`~hvl.core.search` (frame
index, ranked search, query-set evaluation). :mod:`~hvl.core.errors`, :mod:`~hvl.core.io`,
:mod:`~hvl.core.registry`, :mod:`~hvl.core.tracking` and :mod:`~hvl.core.outputs` are leaves anyone may
import; :mod:`~hvl.core.cli` (one module per subcommand) wires it all and nothing imports it. Core never imports a domain: domains are
found through the registry's entry points.
"""
