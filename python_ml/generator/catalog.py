"""The song catalog: genres, singers, songs and their popularity.

Songs are stored sorted by genre, so the songs of genre ``g`` are the slice
``genre_starts[g]:genre_starts[g + 1]``. Within a genre, popularity follows
Zipf's law: the song of popularity rank ``r`` (from 1) has weight
``r ** -zipf_exponent``, normalised so each genre's weights sum to 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from python_ml.generator import text
from python_ml.generator.params import GenerationParameters
from python_ml.generator.seeding import component_rng

# Song type codes and their shares in the play log.
SONG_TYPES = ("0", "1", "2")
SONG_TYPE_SHARES = (0.86, 0.1, 0.04)


@dataclasses.dataclass
class Catalog:
    """The songs, indexed 0..n-1 in genre order.

    Attributes
    ----------
    song_id : numpy.ndarray of int64
        Distinct ids of up to 8 digits, in random order.
    genre : numpy.ndarray of int16
        Genre of each song, non-decreasing.
    genre_starts : numpy.ndarray of int64
        Index of the first song of each genre, plus the song count at the end.
    popularity : numpy.ndarray of float64
        Within-genre Zipf weight of each song; sums to 1 over each genre.
    cumulative_popularity : numpy.ndarray of float64
        ``genre + cumsum of popularity within the genre``, so that drawing
        ``genre + u`` with u uniform in [0, 1) and searching this array picks
        a song of that genre by popularity.
    song_length : numpy.ndarray of int32
        Length in whole seconds.
    song_type : list of str
    song_name, singer : list of str
    song_fragment : list of str
        ``song_id``, ``song_type``, ``song_name`` and ``singer`` of each song
        joined by tabs, as they appear in a play line.
    """

    song_id: np.ndarray
    genre: np.ndarray
    genre_starts: np.ndarray
    popularity: np.ndarray
    cumulative_popularity: np.ndarray
    song_length: np.ndarray
    song_type: list[str]
    song_name: list[str]
    singer: list[str]
    song_fragment: list[str]

    @property
    def size(self) -> int:
        return len(self.song_id)

    @property
    def genre_count(self) -> int:
        return len(self.genre_starts) - 1

    def genre_shares(self) -> np.ndarray:
        """Return the share of the catalog's songs in each genre."""
        return np.diff(self.genre_starts) / self.size

    def draw_songs(self, genres: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Return one song index per entry of ``genres``, drawn by popularity.

        ``uniforms`` are draws in [0, 1), one per entry.
        """
        positions = np.searchsorted(self.cumulative_popularity, genres + uniforms, side="right")
        # Guard the upper edge of a genre against rounding in the cumulative sum.
        return np.minimum(positions, self.genre_starts[genres + 1] - 1)


def catalog_size(params: GenerationParameters, users: int) -> int:
    """Return the number of songs generated for ``users`` simulated users."""
    return max(params.min_songs, round(params.songs_per_user * users))


def draw_song_ids(rng: np.random.Generator, count: int) -> np.ndarray:
    """Return ``count`` distinct song ids: most have 7 or 8 digits, older ones fewer."""
    ids = np.empty(0, dtype=np.int64)
    while len(ids) < count:
        need = count - len(ids)
        recent = rng.integers(1_000_000, 100_000_000, size=need)
        older = np.exp(rng.uniform(np.log(1_000), np.log(1_000_000), size=need)).astype(np.int64)
        draws = np.where(rng.random(need) < 0.85, recent, older)
        ids = np.unique(np.concatenate([ids, draws]))
    return rng.permutation(ids)[:count]


def build_catalog(params: GenerationParameters, users: int, seed: int) -> Catalog:
    """Generate the catalog for ``users`` simulated users."""
    rng = component_rng(seed, "catalog")
    count = catalog_size(params, users)
    genre_count = params.genre_count

    # Genre sizes: a Dirichlet split of the catalog, at least 5 songs each.
    shares = rng.dirichlet(np.full(genre_count, params.genre_size_concentration))
    sizes = np.maximum(5, np.floor(shares * count).astype(np.int64))
    sizes[np.argmax(sizes)] += count - sizes.sum()
    genre = np.repeat(np.arange(genre_count, dtype=np.int16), sizes)
    genre_starts = np.concatenate([[0], np.cumsum(sizes)])

    # Zipf popularity within each genre, by a random rank.
    popularity = np.empty(count)
    cumulative = np.empty(count)
    for index in range(genre_count):
        start, stop = genre_starts[index], genre_starts[index + 1]
        ranks = rng.permutation(stop - start) + 1
        weights = ranks.astype(np.float64) ** -params.zipf_exponent
        weights /= weights.sum()
        popularity[start:stop] = weights
        cumulative[start:stop] = index + np.cumsum(weights)

    lengths = rng.lognormal(
        np.log(params.song_length_median_seconds), params.song_length_log_sd, size=count
    )
    song_length = np.clip(np.rint(lengths), 30, 900).astype(np.int32)
    type_codes = rng.choice(len(SONG_TYPES), size=count, p=SONG_TYPE_SHARES)
    song_type = [SONG_TYPES[code] for code in type_codes]

    # Singers belong to one genre; a genre's songs go to its singers, some
    # singers far more often than others.
    singer_count = max(genre_count, round(count / params.songs_per_singer))
    names = text.singer_names(rng, singer_count)
    singer_genre = np.concatenate(
        [np.arange(genre_count), rng.choice(genre_count, size=singer_count - genre_count, p=shares)]
    )
    singer = [""] * count
    for index in range(genre_count):
        own = np.flatnonzero(singer_genre == index)
        weights = (np.arange(len(own)) + 1.0) ** -0.8
        picks = rng.choice(own, size=sizes[index], p=weights / weights.sum())
        start = genre_starts[index]
        for offset, pick in enumerate(picks):
            singer[start + offset] = names[pick]

    song_name = text.song_titles(rng, count)
    song_id = draw_song_ids(rng, count)
    fragment = [
        f"{song_id[index]}\t{song_type[index]}\t{song_name[index]}\t{singer[index]}"
        for index in range(count)
    ]
    return Catalog(
        song_id=song_id,
        genre=genre,
        genre_starts=genre_starts,
        popularity=popularity,
        cumulative_popularity=cumulative,
        song_length=song_length,
        song_type=song_type,
        song_name=song_name,
        singer=singer,
        song_fragment=fragment,
    )
