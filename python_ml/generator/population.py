"""Simulated users: identities, tastes, favourite songs and activity traits.

A human's next song is drawn from a mixture. With probability
``favourite_share`` it is one of the user's favourite songs, picked by the
favourite weights. Otherwise it is a genre drawn from the user's taste, then a
song of that genre by Zipf popularity. The probability of each song under
that mixture is the user's true affinity for it (see ``truth.py``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from python_ml.generator.catalog import Catalog
from python_ml.generator.params import DAY_COUNT, INITIAL_FADE_AGES, GenerationParameters
from python_ml.generator.seeding import component_rng

INT32_LIMIT = 2**31


@dataclasses.dataclass
class ActivityTraits:
    """Per-user parameters of the activity and churn model (one entry per user).

    Attributes
    ----------
    play_rate : numpy.ndarray
        Expected plays per day while active, before the day factors.
    download_ratio : numpy.ndarray
        Expected downloads per play.
    search_rate : numpy.ndarray
        Expected searches per day while active.
    fade_hazard : numpy.ndarray
        Daily probability of an active user starting to fade, before the
        new-user boost.
    join_day : numpy.ndarray of int16
        First active day (index from 2017-03-30); 0 for existing users.
    initial_fade_age : numpy.ndarray of int16
        Days an existing user has already been fading on day 0, or -1.
    """

    play_rate: np.ndarray
    download_ratio: np.ndarray
    search_rate: np.ndarray
    fade_hazard: np.ndarray
    join_day: np.ndarray
    initial_fade_age: np.ndarray

    def replace_rows(self, rows: np.ndarray, other: ActivityTraits) -> None:
        """Overwrite the traits of ``rows`` with those of ``other`` (same length as rows)."""
        for field in dataclasses.fields(self):
            getattr(self, field.name)[rows] = getattr(other, field.name)

    def total_rate(self) -> np.ndarray:
        """Return the expected events of all kinds per active day."""
        return self.play_rate * (1.0 + self.download_ratio) + self.search_rate


@dataclasses.dataclass
class Population:
    """Identities and tastes of all simulated users (bots included).

    Attributes
    ----------
    user_id : numpy.ndarray of int64
        Distinct uids: most have 9 digits, older accounts fewer, and about 1%
        exceed 2**31 so that downstream 64-bit handling is exercised.
    device : numpy.ndarray of int8
        Main device: 0 for Android (``ar``), 1 for iPhone (``ip``).
    paid : numpy.ndarray of int8
        The ``paid_flag`` of the user's lines.
    taste : numpy.ndarray, shape (users, genres)
        Share of non-favourite plays that go to each genre.
    favourites : numpy.ndarray of int32, shape (users, max_favourites)
        Catalog indices of favourite songs, -1 in unused slots.
    favourite_weight : numpy.ndarray, shape (users, max_favourites)
        Probability of each slot among favourite plays; 0 for unused slots.
    favourite_share : numpy.ndarray
        Share of plays that go to favourites.
    is_bot : numpy.ndarray of bool
        Set by the churn module once the bot count is known.
    activity : ActivityTraits
    """

    user_id: np.ndarray
    device: np.ndarray
    paid: np.ndarray
    taste: np.ndarray
    favourites: np.ndarray
    favourite_weight: np.ndarray
    favourite_share: np.ndarray
    is_bot: np.ndarray
    activity: ActivityTraits

    @property
    def size(self) -> int:
        return len(self.user_id)

    def draw_songs(
        self, catalog: Catalog, users: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Return one catalog index per entry of ``users``, by each user's affinity."""
        count = len(users)
        if count == 0:
            return np.empty(0, dtype=np.int64)
        from_favourites = rng.random(count) < self.favourite_share[users]
        songs = np.empty(count, dtype=np.int64)

        picked = np.flatnonzero(from_favourites)
        if len(picked):
            slots = _draw_rows(self.favourite_weight[users[picked]], rng)
            songs[picked] = self.favourites[users[picked], slots]

        others = np.flatnonzero(~from_favourites)
        if len(others):
            genres = _draw_rows(self.taste[users[others]], rng)
            songs[others] = catalog.draw_songs(genres, rng.random(len(others)))
        return songs


def _draw_rows(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return one column index per row of ``weights``, each row a distribution."""
    cumulative = np.cumsum(weights, axis=1)
    targets = rng.random(len(weights)) * cumulative[:, -1]
    choice = (cumulative <= targets[:, None]).sum(axis=1)
    return np.minimum(choice, weights.shape[1] - 1)


def draw_user_ids(rng: np.random.Generator, count: int) -> np.ndarray:
    """Return ``count`` distinct uids in random order."""
    ids = np.empty(0, dtype=np.int64)
    while len(ids) < count:
        need = count - len(ids)
        kind = rng.random(need)
        recent = rng.integers(100_000_000, 200_000_000, size=need)
        older = np.exp(rng.uniform(np.log(10_000), np.log(100_000_000), size=need))
        wide = rng.integers(INT32_LIMIT, 4 * INT32_LIMIT, size=need)
        draws = np.where(kind < 0.8, recent, np.where(kind < 0.99, older.astype(np.int64), wide))
        ids = np.unique(np.concatenate([ids, draws]))
    return rng.permutation(ids)[:count]


def draw_activity_traits(
    params: GenerationParameters, count: int, rng: np.random.Generator
) -> ActivityTraits:
    """Draw the activity and churn traits of ``count`` human users."""
    rate_z = rng.standard_normal(count)
    download_z = rng.standard_normal(count)
    search_z = rng.standard_normal(count)

    play_rate = np.minimum(
        np.exp(params.play_rate_log_mean + params.play_rate_log_sd * rate_z),
        params.play_rate_cap,
    )
    download_ratio = np.exp(
        params.download_ratio_log_mean + params.download_ratio_log_sd * download_z
    )
    search_rate = (
        params.search_scale
        * play_rate**params.search_exponent
        * np.exp(params.search_log_sd * search_z - params.search_log_sd**2 / 2)
    )
    # Busier, downloading and searching users fade less often.
    log_hazard = np.log(params.fade_hazard) - (
        params.fade_rate_effect * params.play_rate_log_sd * rate_z
        + params.fade_download_effect * params.download_ratio_log_sd * download_z
        + params.fade_search_effect * params.search_log_sd * search_z
    )
    low, high = params.fade_hazard_bounds
    fade_hazard = np.clip(np.exp(log_hazard), low, high)

    existing = rng.random(count) < params.existing_share
    join_day = np.where(existing, 0, rng.integers(1, DAY_COUNT, size=count)).astype(np.int16)
    fading = existing & (rng.random(count) < params.initial_fading_share)
    initial_fade_age = np.where(fading, rng.integers(0, INITIAL_FADE_AGES, size=count), -1).astype(
        np.int16
    )
    return ActivityTraits(
        play_rate=play_rate,
        download_ratio=download_ratio,
        search_rate=search_rate,
        fade_hazard=fade_hazard,
        join_day=join_day,
        initial_fade_age=initial_fade_age,
    )


def build_population(
    params: GenerationParameters, users: int, seed: int, catalog: Catalog
) -> Population:
    """Draw identities, tastes, favourites and activity traits of ``users`` users."""
    rng = component_rng(seed, "population")
    user_id = draw_user_ids(rng, users)
    device = (rng.random(users) >= params.android_share).astype(np.int8)
    paid = (rng.random(users) < params.paid_share).astype(np.int8)

    # Tastes concentrate on a few genres around the catalog's genre shares.
    alpha = np.maximum(params.taste_concentration * catalog.genre_shares(), 1e-3)
    taste = rng.dirichlet(alpha, size=users)
    taste = np.maximum(taste, 1e-9)
    taste /= taste.sum(axis=1, keepdims=True)

    slots = params.max_favourites
    favourite_count = rng.integers(3, slots + 1, size=users)
    used = np.arange(slots)[None, :] < favourite_count[:, None]
    weights = np.where(used, (np.arange(slots) + 1.0)[None, :] ** -0.8, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)

    # Favourites come from the user's genres: half by popularity, half
    # uniformly within the genre, so that not everyone loves the same hits.
    genres = _draw_rows(np.repeat(taste, slots, axis=0), rng)
    by_popularity = catalog.draw_songs(genres, rng.random(users * slots))
    sizes = np.diff(catalog.genre_starts)[genres]
    uniform = catalog.genre_starts[genres] + (rng.random(users * slots) * sizes).astype(np.int64)
    picks = np.where(rng.random(users * slots) < 0.5, by_popularity, uniform)
    favourites = np.where(used, picks.reshape(users, slots), -1).astype(np.int32)

    share_a, share_b = params.favourite_share_beta
    favourite_share = rng.beta(share_a, share_b, size=users)
    activity = draw_activity_traits(params, users, rng)
    return Population(
        user_id=user_id,
        device=device,
        paid=paid,
        taste=taste,
        favourites=favourites,
        favourite_weight=weights,
        favourite_share=favourite_share,
        is_bot=np.zeros(users, dtype=bool),
        activity=activity,
    )
