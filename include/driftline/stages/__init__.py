"""The pipeline's stages, one module each. Each reads its inputs from the store, judges them
against the interval's baseline, and writes its own result and violations:

- ``ingest``: captured traffic -> the interval's typed batch and quarantine;
- ``baseline``: training data -> a baseline version (statistics, constraints, GX suite), or
  an imported SageMaker one; people's answers absorbed into a new version;
- ``data_quality`` (+ ``data_quality_docs``): Great Expectations validation of the batch;
- ``drift``: per-feature, prediction and multivariate drift, with attribution;
- ``labels``: late ground truth, ingested by arrival day and joined to the predictions;
- ``model_quality``: realized and estimated model quality, bias drift;
- ``alerts``: violations -> incidents and messages (persistence, routes, re-judgements);
- ``answers`` / ``feedback``: people's answers to incidents, and asking for them;
- ``retrain`` / ``retrain_policy``: when to retrain, training a challenger, promotion.
"""
