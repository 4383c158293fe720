"""``musicbox train``: churn models and the ALS recommender on the marts that dbt built."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from python_ml import churn, config, data, recommend, training
from python_ml.spark import get_spark

logger = logging.getLogger(__name__)

WHAT_CHOICES = {"churn": ("churn",), "recommender": ("recommender",), "all": training.TARGETS}


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction strictly between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _model_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in churn.MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown churn model(s) {unknown or text!r}; choose from {', '.join(churn.MODELS)}"
        )
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the churn models and the recommender on the marts",
        description=(
            "Read the marts that `dbt build` wrote, train and evaluate the churn classifiers "
            "and/or the ALS recommender, write predictions back to <schema>_ml and a report "
            "to <reports dir>/<run id>/."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=sorted(WHAT_CHOICES),
        help="which models to train",
    )
    parser.add_argument(
        "--target",
        default=None,
        help="dbt target in profiles.yml whose schema contains the marts "
        "(default: MUSICBOX_TARGET, else the profile's default target)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of every split and model")
    parser.add_argument(
        "--run-id",
        default=None,
        help="name of the run folder and of the run_id column (default: UTC time, "
        "such as 20170512T093000Z)",
    )
    parser.add_argument(
        "--reports-dir",
        type=Path,
        default=None,
        help="folder for run reports (default: MUSICBOX_REPORTS_DIR, else <project>/reports)",
    )
    _add_churn_options(parser)
    _add_recommender_options(parser)
    parser.add_argument(
        "--truth-dir",
        type=Path,
        default=None,
        help="generator ground truth for oracle metrics, used when it contains manifest.json "
        "(default: $MUSICBOX_DATA_DIR/ground_truth)",
    )
    parser.add_argument(
        "--no-write-back",
        action="store_true",
        help="skip writing churn_predictions and song_recommendations",
    )
    parser.set_defaults(func=run)


def _add_churn_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--test-fraction",
        type=_fraction,
        default=0.2,
        help="share of each label's users held out to test the churn models",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=3,
        help="cross-validation folds (at least 2) for tuning the churn models",
    )
    parser.add_argument(
        "--grid",
        choices=churn.GRID_NAMES,
        default="standard",
        help="churn hyperparameter grid: quick (small models, for smoke runs) or standard",
    )
    parser.add_argument(
        "--models",
        type=_model_list,
        default=tuple(churn.MODELS),
        help="comma-separated churn models to train",
    )


def _add_recommender_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--top-n",
        type=_positive_int,
        default=10,
        help="songs per user in song_recommendations, and k of the ranking metrics",
    )
    parser.add_argument(
        "--rating-test-fraction",
        type=_fraction,
        default=0.2,
        help="expected share of (user, song) ratings held out to test the recommender",
    )
    parser.add_argument(
        "--rating-validation-fraction",
        type=_fraction,
        default=0.1,
        help="expected share of the remaining ratings used to choose ALS parameters",
    )
    parser.add_argument(
        "--als-grid",
        choices=sorted(recommend.ALS_GRIDS),
        default="standard",
        help=(
            "ALS grids: quick (rank 10) or standard (biased explicit ALS at rank 80); "
            "both try a biased and a plain explicit point"
        ),
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="Spark checkpoint folder for ALS (default: $MUSICBOX_DATA_DIR/spark/checkpoints)",
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=_positive_int,
        default=5,
        help="ALS iterations between checkpoints",
    )


def options_from_args(args: argparse.Namespace) -> training.TrainingOptions:
    """Build the training options from parsed arguments, filling in project defaults."""
    if args.folds < 2:
        raise ValueError(f"--folds must be at least 2, got {args.folds}")
    schema = config.profile_target(args.target)["schema"]
    return training.TrainingOptions(
        run_id=args.run_id or training.default_run_id(),
        targets=WHAT_CHOICES[args.what],
        seed=args.seed,
        schemas=data.Schemas(schema),
        reports_dir=(args.reports_dir or training.default_reports_dir()).resolve(),
        test_fraction=args.test_fraction,
        folds=args.folds,
        grid=args.grid,
        models=args.models,
        top_n=args.top_n,
        rating_test_fraction=args.rating_test_fraction,
        rating_validation_fraction=args.rating_validation_fraction,
        als_grid=args.als_grid,
        checkpoint_dir=args.checkpoint_dir or config.data_dir() / "spark" / "checkpoints",
        checkpoint_interval=args.checkpoint_interval,
        truth_dir=args.truth_dir or training.default_truth_dir(),
        write_tables=not args.no_write_back,
    )


def run(args: argparse.Namespace) -> int:
    try:
        options = options_from_args(args)
    except (ValueError, config.ConfigError) as error:
        logger.error("invalid training options: %s", error)
        return 2
    logger.info(
        "training %s, run %s, marts in %s",
        ", ".join(options.targets),
        options.run_id,
        options.schemas.marts,
    )
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Python workers (pandas UDFs) must run this interpreter, whose
        # environment has pandas and pyarrow; spark-submit sets its own.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = get_spark("music_box_train")
    try:
        result = training.run_training(spark, options)
    except data.MissingTableError as error:
        logger.error("%s", error)
        return 1
    logger.info("report: %s", result.report_path)
    return 0
