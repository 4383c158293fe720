"""Calendar and tunable parameters of the synthetic data generator.

The calendar matches the delivered export and the dbt vars' defaults: 44 days
from 2017-03-30, a feature window ending on the snapshot date 2017-04-28 and
a 14-day label window after it. Every rate below is per user per day unless
its name says otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

FIRST_DAY = dt.date(2017, 3, 30)
DAY_COUNT = 44
SNAPSHOT_DATE = dt.date(2017, 4, 28)
LABEL_WINDOW_DAYS = 14
BOT_PERCENTILE = 0.999
# Existing users already fading on the first day start at an age below this.
INITIAL_FADE_AGES = 6

# Index of the snapshot date among the generated days (0 is 2017-03-30).
SNAPSHOT_INDEX = (SNAPSHOT_DATE - FIRST_DAY).days
LABEL_FIRST_INDEX = SNAPSHOT_INDEX + 1
LABEL_LAST_INDEX = SNAPSHOT_INDEX + LABEL_WINDOW_DAYS

KINDS = ("play", "down", "search")

# Public holidays of mainland China in the period: Qingming (2017-04-02 to
# 2017-04-04) and Labour Day (2017-04-29 to 2017-05-01).
HOLIDAYS = (
    dt.date(2017, 4, 2),
    dt.date(2017, 4, 3),
    dt.date(2017, 4, 4),
    dt.date(2017, 4, 29),
    dt.date(2017, 4, 30),
    dt.date(2017, 5, 1),
)


def day_dates() -> list[dt.date]:
    """Return the 44 generated dates in order."""
    return [FIRST_DAY + dt.timedelta(days=index) for index in range(DAY_COUNT)]


@dataclasses.dataclass(frozen=True)
class GenerationParameters:
    """Knobs of the behaviour, churn, catalog and dirt models.

    The defaults were calibrated at 59,000 users against the published
    figures of the real 10% user sample (see ``docs/generator.md``).
    """

    # --- Catalog ------------------------------------------------------------
    genre_count: int = 24
    # Songs in the catalog per simulated user (at least ``min_songs``).
    songs_per_user: float = 1.4
    min_songs: int = 600
    # Songs per singer, on average.
    songs_per_singer: float = 9.0
    # Exponent of the within-genre Zipf popularity: weight = rank ** -exponent.
    zipf_exponent: float = 1.0
    # Dirichlet concentration of the genre sizes.
    genre_size_concentration: float = 2.0
    # Median and log-sd of song lengths, in seconds.
    song_length_median_seconds: float = 235.0
    song_length_log_sd: float = 0.3

    # --- Tastes -------------------------------------------------------------
    # Dirichlet concentration of a user's genre taste around the genre sizes;
    # small values make each user like few genres.
    taste_concentration: float = 0.6
    max_favourites: int = 16
    # Share of a user's plays that go to their favourite songs: Beta(a, b).
    favourite_share_beta: tuple[float, float] = (2.0, 4.0)

    # --- Activity -----------------------------------------------------------
    # Log-normal play rate of active humans (plays per day), capped.
    play_rate_log_mean: float = 1.02
    play_rate_log_sd: float = 1.35
    play_rate_cap: float = 100.0
    # Downloads per play: log-normal.
    download_ratio_log_mean: float = -3.35
    download_ratio_log_sd: float = 1.0
    # Searches per day = scale * play_rate ** exponent * log-normal noise.
    search_scale: float = 0.228
    search_exponent: float = 0.55
    search_log_sd: float = 0.9
    # Shape of the gamma day-to-day intensity shared by a user's three event
    # kinds (smaller means burstier days and more idle days).
    day_intensity_shape: float = 0.7
    # Weekly rhythm, Monday first, and the holiday multiplier.
    weekday_factors: tuple[float, ...] = (0.97, 0.96, 0.97, 0.98, 1.03, 1.08, 1.07)
    holiday_factor: float = 1.22
    android_share: float = 0.83
    paid_share: float = 0.12
    # Share of a user's events logged on their other device.
    other_device_share: float = 0.02

    # --- Joining and churn --------------------------------------------------
    # Share of users already active on the first day; the others join on a
    # uniformly drawn later day.
    existing_share: float = 0.6
    # Share of the existing users that are already fading on the first day.
    initial_fading_share: float = 0.08
    # Daily hazard of an active user starting to fade, at the median traits,
    # and its elasticities: the log-hazard falls by ``*_effect`` per unit of
    # log play rate, log download ratio and log search-rate noise above the
    # median (the play rate before its cap).
    fade_hazard: float = 0.04
    fade_rate_effect: float = 0.35
    fade_download_effect: float = 0.18
    fade_search_effect: float = 0.15
    fade_hazard_bounds: tuple[float, float] = (0.002, 0.25)
    # Extra hazard of new users: multiplier 1 + boost * exp(-days / decay).
    new_user_hazard_boost: float = 2.5
    new_user_hazard_decay_days: float = 7.0
    # A fading user's activity multiplier is start * exp(-age / decay).
    fading_start_factor: float = 0.55
    fading_decay_days: float = 4.0
    # Daily probabilities of a fading user leaving (becoming gone) or
    # recovering (becoming active again).
    leave_probability: float = 0.3
    recover_probability: float = 0.03
    # Daily probability of a user who left coming back as an active user.
    return_probability: float = 0.015
    # Users with no event at all are drawn again this many times at most, so
    # that almost every simulated user appears in the logs.
    redraw_rounds: int = 12

    # --- Bots ---------------------------------------------------------------
    # Bot play rates (plays per day) are log-uniform between these bounds.
    bot_play_rate_bounds: tuple[float, float] = (150.0, 1000.0)
    bot_favourite_share: float = 0.85
    # Bots play at least this multiple of the busiest human's plays in the
    # feature window.
    bot_margin: float = 1.3
    # A bot campaign: on this day the bots together play this many extra
    # songs per simulated user, which makes it the busiest day of the export.
    bot_burst_date: dt.date = dt.date(2017, 4, 22)
    bot_burst_plays_per_user: float = 3.5

    # --- Plays --------------------------------------------------------------
    # Shares of full plays and of early skips; the rest stop part-way.
    full_play_share: float = 0.58
    skip_share: float = 0.27
    skip_max_seconds: int = 30
    # Full plays run up to this many seconds past the song length.
    overrun_max_seconds: int = 3

    # --- Archives -----------------------------------------------------------
    # Maximum lines per archive part at 59,000 users; scaled with the users.
    lines_per_part_at_default: int = 110_000
    min_lines_per_part: int = 500
    gzip_level: int = 6

    # --- Dirt ---------------------------------------------------------------
    # Share of lines that receive line-level dirt, split over the kinds by
    # the weights in ``dirt.LINE_DIRT_WEIGHTS``.
    dirt_line_share: float = 0.001
    # Archive-level dirt, per 1,000 archives (at least one of each).
    crlf_archives_per_thousand: float = 12.0
    undated_member_archives_per_thousand: float = 12.0
    empty_extra_archives_per_thousand: float = 8.0

    def to_json(self) -> dict:
        """Return the parameters as a JSON-ready dict."""
        result = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dt.date):
                value = value.isoformat()
            result[field.name] = value
        return result


def day_factors(params: GenerationParameters) -> np.ndarray:
    """Return the activity multiplier of each generated day (weekday x holiday)."""
    factors = np.empty(DAY_COUNT)
    for index, date in enumerate(day_dates()):
        factor = params.weekday_factors[date.weekday()]
        if date in HOLIDAYS:
            factor *= params.holiday_factor
        factors[index] = factor
    return factors


def lines_per_part(params: GenerationParameters, users: int) -> int:
    """Return the maximum lines of one archive part for ``users`` simulated users."""
    scaled = round(params.lines_per_part_at_default * users / 59_000)
    return max(params.min_lines_per_part, scaled)
