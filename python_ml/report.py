"""PNG charts and the HTML page of a training run.

Charts are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas,
so no pyplot state or display backend is involved. The page
``<run dir>/index.html`` shows every chart beside the metrics tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from python_ml import evaluate

logger = logging.getLogger(__name__)

# Features shown per model in the weights chart.
TOP_FEATURES = 15
DPI = 110


@dataclass
class ReportData:
    """Arrays that the charts need but ``metrics.json`` does not keep.

    Attributes
    ----------
    churn_scores : dict of str to (labels, probabilities)
        Test labels and predicted probabilities per churn model.
    oracle_churn : tuple of arrays, optional
        Test labels and ground-truth probabilities.
    observed_oracle_churn : tuple of arrays, optional
        Test labels and the ground truth's probabilities from the observed days.
    feature_weights : dict of str to dict of str to float
        Importances or standardised coefficients per churn model.
    rating_distribution : list of (rating, pair count)
        How many (user, song) pairs have each rating.
    sample_recommendations : DataFrame, optional
        A few users' top songs, with names when ``dim_songs`` exists.
    """

    churn_scores: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    oracle_churn: tuple[np.ndarray, np.ndarray] | None = None
    observed_oracle_churn: tuple[np.ndarray, np.ndarray] | None = None
    feature_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    rating_distribution: list[tuple[float, int]] = field(default_factory=list)
    sample_recommendations: pd.DataFrame | None = None


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI)
    logger.debug("wrote chart %s", path)
    return path


def plot_roc(data: ReportData, path: Path) -> Path:
    """Draw the ROC curves of every churn model, and of the oracle, on one plot."""
    figure = Figure(figsize=(6, 5.5), layout="constrained")
    axes = figure.add_subplot()
    curves = dict(data.churn_scores)
    if data.oracle_churn is not None:
        curves["oracle (ground truth)"] = data.oracle_churn
    if data.observed_oracle_churn is not None:
        curves["oracle from the observed days"] = data.observed_oracle_churn
    for name, (labels, scores) in curves.items():
        false_rate, true_rate = evaluate.roc_curve(labels, scores)
        auc = evaluate.roc_auc(labels, scores)
        style = "--" if name.startswith("oracle") else "-"
        axes.plot(false_rate, true_rate, style, label=f"{name} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1))
    axes.set_title("Churn ROC curves on the test users")
    axes.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def plot_gain_lift(data: ReportData, path: Path) -> Path:
    """Draw cumulative gain and lift of every churn model side by side."""
    figure = Figure(figsize=(11, 4.8), layout="constrained")
    gain_axes, lift_axes = figure.subplots(1, 2)
    for name, (labels, scores) in data.churn_scores.items():
        targeted, found = evaluate.cumulative_gain(labels, scores)
        gain_axes.plot(targeted, found, label=name)
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = np.where(targeted > 0, found / targeted, np.nan)
        lift_axes.plot(targeted[1:], lift[1:], label=name)
    gain_axes.plot([0, 1], [0, 1], ":", color="grey", label="random targeting")
    gain_axes.set(
        xlabel="share of users targeted (highest score first)",
        ylabel="share of churners found",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    gain_axes.set_title("Cumulative gain")
    lift_axes.axhline(1.0, linestyle=":", color="grey", label="random targeting")
    lift_axes.set(
        xlabel="share of users targeted (highest score first)",
        ylabel="lift (churners found / random)",
        xlim=(0, 1),
    )
    lift_axes.set_title("Lift")
    for axes in (gain_axes, lift_axes):
        axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def plot_feature_weights(data: ReportData, path: Path) -> Path:
    """Draw the largest feature weights of each churn model as horizontal bars."""
    models = list(data.feature_weights)
    figure = Figure(figsize=(9, 4.5 * len(models)), layout="constrained")
    all_axes = np.atleast_1d(figure.subplots(len(models), 1))
    for axes, name in zip(all_axes, models, strict=True):
        weights = data.feature_weights[name]
        ordered = sorted(weights.items(), key=lambda item: abs(item[1]), reverse=True)
        top = ordered[:TOP_FEATURES][::-1]
        values = [value for _, value in top]
        colours = ["tab:red" if value < 0 else "tab:blue" for value in values]
        axes.barh([feature for feature, _ in top], values, color=colours)
        linear = any(value < 0 for value in weights.values()) or name == "logistic_regression"
        axes.set_xlabel("standardised coefficient" if linear else "importance (sums to 1)")
        axes.set_title(name)
        axes.tick_params(axis="y", labelsize="small")
    figure.suptitle(f"Churn feature weights (top {TOP_FEATURES} by magnitude)")
    return _save(figure, path)


def plot_rating_distribution(data: ReportData, path: Path) -> Path:
    """Draw how many (user, song) pairs have each rating."""
    figure = Figure(figsize=(6, 4.2), layout="constrained")
    axes = figure.add_subplot()
    values = [value for value, _ in data.rating_distribution]
    counts = [count for _, count in data.rating_distribution]
    width = 0.8 * min(np.diff(values)) if len(values) > 1 else 0.8
    axes.bar(values, counts, width=width, color="tab:blue")
    axes.set(
        xlabel="rating (weighted plays and downloads, truncated at the maximum)",
        ylabel="(user, song) pairs",
    )
    axes.set_title("Rating distribution")
    return _save(figure, path)


def plot_recommender_metrics(metrics: dict[str, Any], path: Path) -> Path:
    """Draw test RMSE and ranking metrics of ALS beside its baselines."""
    section = metrics["recommender"]
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    rmse_axes, ranking_axes = figure.subplots(1, 2)
    rmse = section["rmse"]
    bars_by_name = {
        "als": ("explicit ALS", "tab:blue"),
        "als_plain": ("plain ALS", "tab:cyan"),
        "user_mean": ("user mean", "tab:orange"),
        "global_mean": ("global mean", "tab:grey"),
    }
    names = [name for name in bars_by_name if name in rmse]
    heights = [rmse[name] if rmse[name] is not None else np.nan for name in names]
    bars = rmse_axes.bar(
        [bars_by_name[name][0] for name in names],
        heights,
        color=[bars_by_name[name][1] for name in names],
    )
    rmse_axes.bar_label(bars, fmt="%.3f")
    rmse_axes.set(ylabel="RMSE on held-out pairs (lower is better)")
    rmse_axes.set_title("Rating prediction")
    held_out = section["ranking"]["held_out"]
    k = section["ranking"]["k"]
    metric_names = ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"]
    labels = [f"{name.split('_at_')[0]}@{k}" for name in metric_names]
    positions = np.arange(len(metric_names))
    width = 0.8 / max(1, len(held_out))
    for offset, (name, values) in enumerate(held_out.items()):
        heights = [
            values[metric] if values[metric] is not None else np.nan for metric in metric_names
        ]
        ranking_axes.bar(positions + offset * width, heights, width=width, label=name)
    ranking_axes.set_xticks(positions + width * (len(held_out) - 1) / 2, labels)
    ranking_axes.set(ylabel="mean over test users (higher is better)")
    ranking_axes.set_title("Ranking of held-out songs")
    ranking_axes.legend(fontsize="small")
    return _save(figure, path)


PAGE = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Music Box training run {{ metrics.run_id }}</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 80em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
code { background: #f4f4f4; }
</style></head><body>
<h1>Training run {{ metrics.run_id }}</h1>
<p>Created {{ metrics.created_at }}, seed {{ metrics.seed }}, Spark {{ metrics.spark_version }}.
Every value below is also in <a href="metrics.json"><code>metrics.json</code></a>.</p>
{% if churn %}
<h2>Churn</h2>
<p>{{ churn.data.users }} users, {{ "%.1f"|format(100 * churn.data.churn_rate) }}% churned;
{{ churn.data.train_users }} for training and tuning ({{ churn.split.folds }}-fold
cross-validation), {{ churn.data.test_users }} for the test below. Best model by cross-validated
AUC: <strong>{{ churn.best_model }}</strong>.</p>
<table>
<tr><th>model</th><th>CV AUC</th><th>test ROC AUC</th><th>PR AUC</th><th>log loss</th>
<th>Brier</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th>
<th>TP</th><th>FP</th><th>TN</th><th>FN</th><th>chosen parameters</th></tr>
{% for name, model in churn.models.items() %}{% set cm = model.test.confusion_matrix %}
<tr><td>{{ name }}</td><td>{{ fmt(model.cv.best_cv_auc) }}</td>
<td>{{ fmt(model.test.roc_auc) }}</td>
<td>{{ fmt(model.test.pr_auc) }}</td><td>{{ fmt(model.test.log_loss) }}</td>
<td>{{ fmt(model.test.brier) }}</td><td>{{ fmt(cm.threshold) }}</td><td>{{ fmt(cm.precision) }}</td>
<td>{{ fmt(cm.recall) }}</td><td>{{ fmt(cm.f1) }}</td><td>{{ cm.true_positives }}</td>
<td>{{ cm.false_positives }}</td><td>{{ cm.true_negatives }}</td><td>{{ cm.false_negatives }}</td>
<td>{{ params(model.chosen_params) }}</td></tr>
{% endfor %}
{% if churn.ensemble %}{% set model = churn.ensemble %}{% set cm = model.test.confusion_matrix %}
<tr><td>mean_of_models</td><td>{{ fmt(model.cv.best_cv_auc) }}</td>
<td>{{ fmt(model.test.roc_auc) }}</td>
<td>{{ fmt(model.test.pr_auc) }}</td><td>{{ fmt(model.test.log_loss) }}</td>
<td>{{ fmt(model.test.brier) }}</td><td>{{ fmt(cm.threshold) }}</td><td>{{ fmt(cm.precision) }}</td>
<td>{{ fmt(cm.recall) }}</td><td>{{ fmt(cm.f1) }}</td><td>{{ cm.true_positives }}</td>
<td>{{ cm.false_positives }}</td><td>{{ cm.true_negatives }}</td><td>{{ cm.false_negatives }}</td>
<td>average of {{ model.members|join(", ") }}</td></tr>{% endif %}
{% if churn.oracle %}<tr><td>oracle (ground truth)</td><td></td>
<td>{{ fmt(churn.oracle.roc_auc) }}</td>
<td>{{ fmt(churn.oracle.pr_auc) }}</td><td>{{ fmt(churn.oracle.log_loss) }}</td>
<td>{{ fmt(churn.oracle.brier) }}</td><td colspan="9"></td></tr>
{% if churn.oracle.observed %}{% set observed = churn.oracle.observed %}
<tr><td>oracle from the observed days</td><td></td>
<td>{{ fmt(observed.roc_auc) }}</td>
<td>{{ fmt(observed.pr_auc) }}</td><td>{{ fmt(observed.log_loss) }}</td>
<td>{{ fmt(observed.brier) }}</td><td colspan="9"></td></tr>{% endif %}{% endif %}
</table>
<p>The threshold maximises F1 on the out-of-fold predictions of the training users.</p>
{% endif %}
{% for chart in charts.churn %}<img src="{{ chart }}" alt="{{ chart }}">
{% endfor %}
{% if rec %}
<h2>Recommender</h2>
<p>{{ rec.data.pairs }} (user, song) ratings of {{ rec.data.users }} users and
{{ rec.data.songs }} songs; {{ rec.data.train_pairs }} for training,
{{ rec.data.test_pairs }} held out ({{ rec.data.scored_test_pairs }} with a known user and song).
Explicit ALS (ratings, RMSE): {{ params(rec.rating_model.chosen_params) }}
{%- if rec.rating_model.biased %}, biased: mean plus user and song biases
plus ALS on the residuals{% endif %}.
{% if rec.rating_model.plain_params %}Plain ALS (<code>als_plain</code>, no bias terms):
{{ params(rec.rating_model.plain_params) }}.{% endif %}
Implicit ALS (top-{{ rec.ranking.k }} lists and <code>song_recommendations</code>):
{{ params(rec.ranking_model.chosen_params) }}.</p>
<table><tr><th>predictor</th><th>test RMSE</th></tr>
{% for name, value in rec.rmse.items() %}<tr><td>{{ name }}</td><td>{{ fmt(value) }}</td></tr>
{% endfor %}</table>
<table><tr><th>ranking on held-out pairs</th><th>precision@{{ rec.ranking.k }}</th>
<th>recall@{{ rec.ranking.k }}</th><th>NDCG@{{ rec.ranking.k }}</th><th>MAP@{{ rec.ranking.k }}</th>
<th>users</th></tr>
{% for name, values in rec.ranking.held_out.items() %}<tr><td>{{ name }}</td>
<td>{{ fmt(values.precision_at_k) }}</td><td>{{ fmt(values.recall_at_k) }}</td>
<td>{{ fmt(values.ndcg_at_k) }}</td><td>{{ fmt(values.map_at_k) }}</td>
<td>{{ values.users }}</td></tr>
{% endfor %}</table>
{% if rec.ranking.against_oracle %}
<table><tr><th>agreement with the oracle's top {{ rec.ranking.k }}</th><th>precision</th>
<th>recall</th><th>NDCG</th><th>MAP</th></tr>
{% for name, values in rec.ranking.against_oracle.items() %}<tr><td>{{ name }}</td>
<td>{{ fmt(values.precision_at_k) }}</td><td>{{ fmt(values.recall_at_k) }}</td>
<td>{{ fmt(values.ndcg_at_k) }}</td><td>{{ fmt(values.map_at_k) }}</td></tr>
{% endfor %}</table>{% endif %}
{% endif %}
{% for chart in charts.recommender %}<img src="{{ chart }}" alt="{{ chart }}">
{% endfor %}
{% if samples %}<h3>Sample recommendations</h3>{{ samples }}{% endif %}
<h2>Timings</h2>
<table><tr><th>stage</th><th>seconds</th></tr>
{% for name, timing in metrics.timings.items() %}<tr><td>{{ name }}</td>
<td>{{ "%.1f"|format(timing.seconds) }}</td></tr>{% endfor %}
</table>
</body></html>
""",
    autoescape=True,
)


def _format_number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items())


def write_report(run_dir: Path, metrics: dict[str, Any], data: ReportData) -> Path:
    """Write every chart the run has data for and ``index.html``; return the page's path.

    Parameters
    ----------
    run_dir : Path
        The run's folder.
    metrics : dict
        The JSON-ready contents of ``metrics.json``.
    data : ReportData
        Arrays for the charts.
    """
    charts: dict[str, list[str]] = {"churn": [], "recommender": []}
    if data.churn_scores:
        charts["churn"].append(plot_roc(data, run_dir / "churn_roc.png").name)
        charts["churn"].append(plot_gain_lift(data, run_dir / "churn_gain_lift.png").name)
    if data.feature_weights:
        path = plot_feature_weights(data, run_dir / "churn_feature_weights.png")
        charts["churn"].append(path.name)
    if data.rating_distribution:
        path = plot_rating_distribution(data, run_dir / "rating_distribution.png")
        charts["recommender"].append(path.name)
    if metrics.get("recommender"):
        path = plot_recommender_metrics(metrics, run_dir / "recommender_metrics.png")
        charts["recommender"].append(path.name)
    samples = None
    if data.sample_recommendations is not None and not data.sample_recommendations.empty:
        samples = data.sample_recommendations.to_html(index=False, float_format="%.3f")
    page = PAGE.render(
        metrics=metrics,
        churn=metrics.get("churn"),
        rec=metrics.get("recommender"),
        charts=charts,
        samples=Markup(samples) if samples else None,
        fmt=_format_number,
        params=_format_params,
    )
    path = run_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
