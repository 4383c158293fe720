"""Daily activity, the hidden churn process and the oracle churn probability.

Each human is in one hidden state per day:

- ``NOT_JOINED`` before their join day (no events);
- ``ACTIVE``: events at their full rate;
- ``FADING``: the rate falls to ``fading_start_factor * exp(-age / fading_decay_days)``
  where ``age`` counts the days since fading began;
- ``GONE``: no events, until the user comes back as active, which happens
  with ``return_probability`` a day.

An active user starts to fade with a daily hazard that is lower for busy,
downloading and searching users and higher in a new user's first weeks. A
fading user leaves with ``leave_probability`` a day or recovers with
``recover_probability``. On each day the counts of plays, downloads and
searches are Poisson with means ``rate * day factor * state factor * G``.
G is one gamma draw of mean 1 per user and day, shared by the three kinds, so
a busy day is busy for all of them.

The oracle churn probability of a user is the probability, given their
traits and hidden state on the snapshot date, that they have no event on any
of the label days. It is computed exactly by a forward pass over the states.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from python_ml.generator.params import (
    BOT_PERCENTILE,
    DAY_COUNT,
    FIRST_DAY,
    INITIAL_FADE_AGES,
    LABEL_FIRST_INDEX,
    LABEL_LAST_INDEX,
    SNAPSHOT_INDEX,
    GenerationParameters,
    day_factors,
)
from python_ml.generator.population import ActivityTraits, Population, draw_activity_traits
from python_ml.generator.seeding import component_rng

logger = logging.getLogger(__name__)

NOT_JOINED, ACTIVE, FADING, GONE = 0, 1, 2, 3
STATE_NAMES = ("not_joined", "active", "fading", "gone")
KIND_PLAY, KIND_DOWN, KIND_SEARCH = 0, 1, 2


@dataclasses.dataclass
class Activity:
    """Simulated daily event counts and hidden states of every user.

    Attributes
    ----------
    counts : numpy.ndarray of int32, shape (3, users, days)
        Plays, downloads and searches of each user on each day.
    state : numpy.ndarray of int8, shape (users, days)
        Hidden state on each day (bots are marked ``ACTIVE``).
    fade_age : numpy.ndarray of int16, shape (users, days)
        Days since fading began, on fading days; -1 otherwise.
    bot_play_rate : numpy.ndarray
        Plays per day of bots, 0 for humans.
    """

    counts: np.ndarray
    state: np.ndarray
    fade_age: np.ndarray
    bot_play_rate: np.ndarray


def hazard_on_day(params: GenerationParameters, traits: ActivityTraits, day: int) -> np.ndarray:
    """Return each user's probability of starting to fade between ``day`` and ``day + 1``."""
    hazard = traits.fade_hazard.copy()
    new_users = traits.join_day > 0
    days_in = day - traits.join_day[new_users]
    boost = 1.0 + params.new_user_hazard_boost * np.exp(
        -np.maximum(days_in, 0) / params.new_user_hazard_decay_days
    )
    hazard[new_users] *= boost
    return np.minimum(hazard, params.fade_hazard_bounds[1])


def state_factor(params: GenerationParameters, state: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Return the activity multiplier of each (state, fading age) pair."""
    fading = params.fading_start_factor * np.exp(-np.maximum(age, 0) / params.fading_decay_days)
    return np.where(state == ACTIVE, 1.0, np.where(state == FADING, fading, 0.0))


def simulate_humans(
    params: GenerationParameters, traits: ActivityTraits, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate the hidden states and daily counts of the users in ``traits``.

    Returns
    -------
    counts : numpy.ndarray of int32, shape (3, users, days)
    state : numpy.ndarray of int8, shape (users, days)
    fade_age : numpy.ndarray of int16, shape (users, days)
    """
    users = len(traits.play_rate)
    factors = day_factors(params)
    shape = params.day_intensity_shape
    counts = np.zeros((3, users, DAY_COUNT), dtype=np.int32)
    states = np.zeros((users, DAY_COUNT), dtype=np.int8)
    ages = np.full((users, DAY_COUNT), -1, dtype=np.int16)

    state = np.where(
        traits.join_day == 0,
        np.where(traits.initial_fade_age >= 0, FADING, ACTIVE),
        NOT_JOINED,
    ).astype(np.int8)
    age = traits.initial_fade_age.astype(np.int16).copy()
    download_rate = traits.play_rate * traits.download_ratio
    for day in range(DAY_COUNT):
        state[(state == NOT_JOINED) & (traits.join_day == day)] = ACTIVE
        states[:, day] = state
        ages[:, day] = np.where(state == FADING, age, -1)

        intensity = factors[day] * state_factor(params, state, age)
        intensity *= rng.gamma(shape, 1.0 / shape, size=users)
        counts[KIND_PLAY, :, day] = rng.poisson(traits.play_rate * intensity)
        counts[KIND_DOWN, :, day] = rng.poisson(download_rate * intensity)
        counts[KIND_SEARCH, :, day] = rng.poisson(traits.search_rate * intensity)

        draw = rng.random(users)
        start_fading = (state == ACTIVE) & (draw < hazard_on_day(params, traits, day))
        was_fading = state == FADING
        leave = was_fading & (draw < params.leave_probability)
        recover = (
            was_fading & ~leave & (draw < params.leave_probability + params.recover_probability)
        )
        back = (state == GONE) & (draw < params.return_probability)
        age = np.where(was_fading, age + 1, age)
        state[back] = ACTIVE
        state[leave] = GONE
        state[recover] = ACTIVE
        state[start_fading] = FADING
        age[start_fading] = 0
        age[recover | leave] = -1
    return counts, states, ages


def bot_count(plays_in_feature_window: np.ndarray, order: np.ndarray) -> int:
    """Return how many users, taken in ``order``, to turn into bots.

    The count B is the one that makes the contract's bot rule flag exactly
    those B users. The rule flags the users with at least one play in the
    feature window whose plays are strictly above the 0.999 percentile
    (linear interpolation). When the bots play more than anyone else, that
    is ``(n - 1) - floor(0.999 * (n - 1))`` of the ``n`` players. Every bot
    plays, so ``n`` counts the remaining human players plus B. Each added
    bot raises ``B - flagged(n)`` by 0 or 1, so a first B where it reaches 0
    exists.
    """
    is_player = plays_in_feature_window[order] > 0
    players = int(is_player.sum())
    removed = np.concatenate([[0], np.cumsum(is_player)])
    for bots in range(len(order) + 1):
        n = players - int(removed[bots]) + bots
        flagged = (n - 1) - math.floor(BOT_PERCENTILE * (n - 1)) if n > 0 else 0
        if bots >= flagged:
            return bots
    return len(order)


def simulate_activity(params: GenerationParameters, population: Population, seed: int) -> Activity:
    """Simulate every user's days, redraw users with no event, then plant the bots.

    The traits of redrawn users are replaced in ``population.activity`` and
    ``population.is_bot`` is set, so that the population describes exactly
    the simulated users.
    """
    traits = population.activity
    counts, states, ages = simulate_humans(params, traits, component_rng(seed, "activity", 0))

    # A user with no event would not appear in the export at all, so the
    # sample is conditioned on appearing: such users are drawn again.
    for round_index in range(1, params.redraw_rounds + 1):
        silent = np.flatnonzero(counts.sum(axis=(0, 2)) == 0)
        if len(silent) == 0:
            break
        rng = component_rng(seed, "activity", round_index)
        fresh = draw_activity_traits(params, len(silent), rng)
        new_counts, new_states, new_ages = simulate_humans(params, fresh, rng)
        traits.replace_rows(silent, fresh)
        counts[:, silent] = new_counts
        states[silent] = new_states
        ages[silent] = new_ages
    silent_left = int((counts.sum(axis=(0, 2)) == 0).sum())
    if silent_left:
        logger.debug("%d users still have no event after redrawing", silent_left)

    rng = component_rng(seed, "bots")
    order = rng.permutation(population.size)
    human_plays = counts[KIND_PLAY, :, : SNAPSHOT_INDEX + 1].sum(axis=1)
    bots = order[: bot_count(human_plays, order)]
    population.is_bot[bots] = True
    # Bots replay a few songs over and over.
    population.favourite_share[bots] = params.bot_favourite_share
    bot_rate = np.zeros(population.size)
    low, high = params.bot_play_rate_bounds
    bot_rate[bots] = np.exp(rng.uniform(np.log(low), np.log(high), size=len(bots)))

    factors = day_factors(params)
    for day in range(DAY_COUNT):
        intensity = factors[day] * rng.gamma(8.0, 1.0 / 8.0, size=len(bots))
        counts[KIND_PLAY, bots, day] = rng.poisson(bot_rate[bots] * intensity)
        counts[KIND_DOWN, bots, day] = rng.poisson(0.05, size=len(bots))
        counts[KIND_SEARCH, bots, day] = rng.poisson(0.1, size=len(bots))
    if len(bots):
        burst_day = (params.bot_burst_date - FIRST_DAY).days
        burst_plays = round(params.bot_burst_plays_per_user * population.size)
        shares = bot_rate[bots] / bot_rate[bots].sum()
        counts[KIND_PLAY, bots, burst_day] += rng.multinomial(burst_plays, shares).astype(np.int32)
    states[bots] = ACTIVE
    ages[bots] = -1

    # Bots must out-play every human in the feature window, by a margin.
    humans = ~population.is_bot
    feature_plays = counts[KIND_PLAY, :, : SNAPSHOT_INDEX + 1].sum(axis=1)
    floor_plays = params.bot_margin * max(1, int(feature_plays[humans].max(initial=0)))
    for bot in bots:
        if feature_plays[bot] < floor_plays:
            scale = floor_plays / max(1, feature_plays[bot])
            counts[KIND_PLAY, bot] = np.ceil(counts[KIND_PLAY, bot] * scale).astype(np.int32)
            counts[KIND_PLAY, bot, : SNAPSHOT_INDEX + 1] += 1
    return Activity(counts=counts, state=states, fade_age=ages, bot_play_rate=bot_rate)


def oracle_churn_probability(
    params: GenerationParameters, traits: ActivityTraits, activity: Activity
) -> np.ndarray:
    """Return each user's probability of no event in the label window.

    The probability is conditional on the user's traits and hidden state on
    the snapshot date, which is all the generator has then. A forward pass
    over states ``ACTIVE``, ``FADING`` at ages 0..days-1 and ``GONE`` carries,
    for each state, the probability of being in it with no event so far. On
    a day whose expected event count is m, the chance of no event is the
    gamma-Poisson zero probability ``(1 + m / shape) ** -shape``.
    """
    users = len(traits.play_rate)
    state = activity.state[:, SNAPSHOT_INDEX]
    age = activity.fade_age[:, SNAPSHOT_INDEX]
    mass = np.zeros((users, _state_columns()))
    rows = np.arange(users)
    mass[rows[state == ACTIVE], _ACTIVE_COLUMN] = 1.0
    fading_rows = rows[state == FADING]
    mass[fading_rows, _fading_column(age[fading_rows])] = 1.0
    mass[rows[(state == GONE) | (state == NOT_JOINED)], _GONE_COLUMN] = 1.0
    return _no_event_after_snapshot(params, traits, mass)


def observed_churn_probability(
    params: GenerationParameters, traits: ActivityTraits, counts: np.ndarray
) -> np.ndarray:
    """Return each user's probability of no event in the label window, given the observed days.

    Unlike :func:`oracle_churn_probability`, this does not know the hidden
    state on the snapshot date. A forward (filtering) pass over the states
    infers it from the user's daily event counts up to that date, with the
    user's true traits and the generator's parameters. No model of the
    feature window's events can expect to do better, because a model must
    also estimate the traits.

    Take a day with multiplier ``s`` (day factor times state factor), ``c``
    events of all kinds and ``m = R s`` expected events for the user's total
    rate ``R``. The gamma-Poisson likelihood of the day is proportional to
    ``s ** c * (1 + m / shape) ** -(shape + c)``. The rest of it depends
    only on how the events split between kinds, which is the same in every
    state, so it cancels. ``GONE`` and ``NOT_JOINED`` allow silent days only.
    An existing user is fading on the first day with probability
    ``initial_fading_share``, at an age drawn uniformly below
    ``INITIAL_FADE_AGES``. A new user is ``NOT_JOINED`` until the join day
    and ``ACTIVE`` on it.

    Parameters
    ----------
    params : GenerationParameters
    traits : ActivityTraits
    counts : numpy.ndarray, shape (3, users, days)
        Simulated plays, downloads and searches; days after the snapshot date
        are ignored.

    Returns
    -------
    numpy.ndarray
        One probability per user; NaN for a user whose counts the simulation
        cannot produce (events before the join day).
    """
    users = len(traits.play_rate)
    factors = day_factors(params)
    shape = params.day_intensity_shape
    total_rate = traits.total_rate()
    events = counts[:, :, : SNAPSHOT_INDEX + 1].sum(axis=0)
    fading_factor = _fading_factors(params)

    not_joined = np.zeros(users)
    impossible = np.zeros(users, dtype=bool)
    mass = np.zeros((users, _state_columns()))
    existing = traits.join_day == 0
    mass[existing, _ACTIVE_COLUMN] = 1.0 - params.initial_fading_share
    initial_ages = np.arange(INITIAL_FADE_AGES)
    for column in _fading_column(initial_ages):
        mass[existing, column] = params.initial_fading_share / INITIAL_FADE_AGES
    not_joined[~existing] = 1.0

    log_factors = np.concatenate([[0.0], np.log(fading_factor)])
    multipliers = np.concatenate([[1.0], fading_factor])
    for day in range(SNAPSHOT_INDEX + 1):
        joining = traits.join_day == day
        mass[joining, _ACTIVE_COLUMN] += not_joined[joining]
        not_joined[joining] = 0.0

        count = events[:, day].astype(float)[:, None]
        expected = total_rate[:, None] * factors[day] * multipliers[None, :]
        log_likelihood = np.empty_like(mass)
        log_likelihood[:, :-1] = count * (np.log(factors[day]) + log_factors[None, :]) - (
            shape + count
        ) * np.log1p(expected / shape)
        # A silent state has likelihood 1 on a silent day and 0 otherwise.
        silent = events[:, day] == 0
        log_likelihood[:, _GONE_COLUMN] = np.where(silent, 0.0, -np.inf)
        # Scale by the best state's likelihood so that busy days do not underflow.
        log_likelihood -= log_likelihood.max(axis=1, keepdims=True)
        scale = np.exp(log_likelihood)
        mass *= scale
        not_joined *= scale[:, _GONE_COLUMN]
        total = mass.sum(axis=1) + not_joined
        # No state allows events before the join day, which only a bot has.
        # Such a user gets NaN.
        impossible |= total == 0
        total[impossible] = 1.0
        mass /= total[:, None]
        not_joined /= total
        if day < SNAPSHOT_INDEX:
            mass = _next_day_mass(params, traits, mass, day)
    # A user who joins after the snapshot date is not in the population. As
    # in the oracle, such a user counts as gone.
    mass[:, _GONE_COLUMN] += not_joined
    probability = _no_event_after_snapshot(params, traits, mass)
    probability[impossible] = np.nan
    return probability


# Columns of the state mass: ACTIVE, FADING at ages 0..DAY_COUNT, then GONE.
_FADE_AGES_TRACKED = DAY_COUNT + 1
_ACTIVE_COLUMN = 0
_GONE_COLUMN = -1


def _state_columns() -> int:
    return _FADE_AGES_TRACKED + 2


def _fading_column(age: np.ndarray) -> np.ndarray:
    return 1 + np.minimum(age, _FADE_AGES_TRACKED - 1)


def _fading_factors(params: GenerationParameters) -> np.ndarray:
    fade_ages = np.arange(_FADE_AGES_TRACKED)
    return params.fading_start_factor * np.exp(-fade_ages / params.fading_decay_days)


def _next_day_mass(
    params: GenerationParameters, traits: ActivityTraits, mass: np.ndarray, day: int
) -> np.ndarray:
    """Move the state mass of each user from ``day`` to ``day + 1``, as the simulation does."""
    hazard = hazard_on_day(params, traits, day)
    leave, recover = params.leave_probability, params.recover_probability
    back = params.return_probability
    active_mass, fading_mass, gone_mass = mass[:, 0], mass[:, 1:-1], mass[:, -1]
    fading_total = fading_mass.sum(axis=1)
    moved = np.zeros_like(mass)
    moved[:, 0] = active_mass * (1 - hazard) + recover * fading_total + back * gone_mass
    moved[:, 1] = active_mass * hazard
    moved[:, 2:-1] = fading_mass[:, :-1] * (1 - leave - recover)
    moved[:, -2] += fading_mass[:, -1] * (1 - leave - recover)
    moved[:, -1] = gone_mass * (1 - back) + leave * fading_total
    return moved


def _no_event_after_snapshot(
    params: GenerationParameters, traits: ActivityTraits, mass: np.ndarray
) -> np.ndarray:
    """Return the probability of no event on any label day, given the state mass on the snapshot."""
    factors = day_factors(params)
    shape = params.day_intensity_shape
    total_rate = traits.total_rate()
    fading_factor = _fading_factors(params)
    for day in range(SNAPSHOT_INDEX, LABEL_LAST_INDEX):
        mass = _next_day_mass(params, traits, mass, day)
        expected = total_rate[:, None] * factors[day + 1]
        mass[:, 0] *= (1 + expected[:, 0] / shape) ** -shape
        mass[:, 1:-1] *= (1 + expected * fading_factor[None, :] / shape) ** -shape
    assert LABEL_FIRST_INDEX == SNAPSHOT_INDEX + 1
    return mass.sum(axis=1)
