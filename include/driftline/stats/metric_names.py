"""The names of the model-quality metrics and which way each is better: what a model file may name
(``performance.thresholds``, ``retraining.metric``), readable without importing scipy or
scikit-learn (DAG files validate model files at parse time)."""
from __future__ import annotations

PROBLEM_TYPES = ("binary_classification", "multiclass_classification", "regression")


#: metric name -> True if higher is better
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True, "precision": True, "recall": True, "f1": True,
    "roc_auc": True, "pr_auc": True, "log_loss": False,
    "precision_macro": True, "recall_macro": True, "f1_macro": True,
    "precision_weighted": True, "recall_weighted": True, "f1_weighted": True,
    "mae": False, "rmse": False, "r2": True, "mape": False,
}


#: the metrics each problem type reports, in display order
METRICS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"),
    "multiclass_classification": ("accuracy", "precision_macro", "recall_macro", "f1_macro",
                                  "precision_weighted", "recall_weighted", "f1_weighted"),
    "regression": ("mae", "rmse", "r2", "mape"),
}
