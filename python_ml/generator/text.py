"""Made-up song titles, singer names and search queries, mostly Chinese.

Every character used here is in GB2312, so each name can also be written in
GBK, which the dirt model needs. Names never contain tabs, line breaks or
surrounding spaces.
"""

from __future__ import annotations

import numpy as np

# Characters common in Chinese pop song titles.
TITLE_CHARACTERS = (
    "爱你我的心梦夜雨风花月星海天光时间说想念走远方歌情人生世界谁等回忆永青春少年城市"
    "路上下里外前后左右东西南北春夏秋冬山水云雪阳晴空白红蓝黑金银绿紫灯火烟尘泪笑哭伤"
    "痛甜美好坏真假新旧长短深浅高低快慢大小多少来去开关见别离聚散思恋怀抱吻手肩眼眸唇"
    "声音乐曲舞唱听看望盼守候等待相遇知己朋友家乡故事传说童话未来过去今明昨晚早晨黄昏"
    "午后半生一二三四五六七八九十百千万年月日秒分钟刻天涯角落尽头彼岸旅行飞翔奔跑漂流"
    "孤单寂寞温柔勇敢自由信仰希望幸福快乐悲欢离合缘分命运岁月流年时光记忆秘密约定承诺"
)

SURNAMES = (
    "王李张刘陈杨黄赵周吴徐孙朱马胡郭林何高梁郑罗宋谢唐韩曹许邓萧冯曾程蔡彭潘袁于董余"
    "苏叶吕魏蒋田杜丁沈姜范江傅钟卢汪戴崔任陆廖姚方金邱夏谭韦贾邹石熊孟秦薛侯雷白龙段"
)

GIVEN_NAME_CHARACTERS = (
    "杰伦俊明华伟芳娜静丽强磊军洋勇艳涛斌超秀英霞平刚文辉建玲宇浩鑫婷雪琳晨欣宁怡佳子"
    "涵梓诗思彤轩然睿博航奕菲凡妍琪璇瑶岚薇一嘉若依之可如以"
)

# fmt: off
LATIN_WORDS = (
    "love", "night", "dream", "summer", "rain", "heart", "fire", "blue", "star", "home",
    "light", "away", "forever", "young", "city", "girl", "boy", "baby", "time", "world",
    "sky", "ocean", "moon", "sunrise", "goodbye", "hello", "little", "wild", "golden",
    "silver", "shadow", "echo", "story", "memory", "river", "road", "lonely", "happy",
    "sweet", "crazy", "magic",
)

LATIN_SYLLABLES = (
    "ka", "lo", "mi", "ra", "an", "el", "to", "ny", "sa", "ri", "de", "va", "lu", "na",
    "ko", "ze", "jo", "be", "ti", "ma",
)
# fmt: on

TITLE_SUFFIXES = ("(Live)", "(伴奏)", "(DJ版)", " (Remix)", "(钢琴版)")

BAND_WORDS = ("乐队", "组合", "乐团")


def _pick(rng: np.random.Generator, pool: str, count: int) -> str:
    return "".join(pool[index] for index in rng.integers(0, len(pool), count))


def chinese_title(rng: np.random.Generator) -> str:
    """Return a made-up Chinese song title of two to seven characters."""
    length = int(rng.choice([2, 3, 4, 4, 5, 6, 7]))
    return _pick(rng, TITLE_CHARACTERS, length)


def latin_title(rng: np.random.Generator) -> str:
    """Return a made-up title of one to four English words, title-cased."""
    words = rng.choice(LATIN_WORDS, size=int(rng.integers(1, 5)))
    return " ".join(word.capitalize() for word in words)


def chinese_person(rng: np.random.Generator) -> str:
    """Return a made-up Chinese name: a surname and one or two given characters."""
    return _pick(rng, SURNAMES, 1) + _pick(rng, GIVEN_NAME_CHARACTERS, int(rng.integers(1, 3)))


def latin_person(rng: np.random.Generator) -> str:
    """Return a made-up Latin-script artist name such as ``Kalo Mira``."""
    parts = []
    for _ in range(int(rng.integers(1, 3))):
        syllables = rng.choice(LATIN_SYLLABLES, size=int(rng.integers(2, 4)))
        parts.append("".join(syllables).capitalize())
    return " ".join(parts)


def song_titles(rng: np.random.Generator, count: int, latin_share: float = 0.12) -> list[str]:
    """Return ``count`` song titles, a ``latin_share`` of them in Latin script."""
    titles = []
    for _ in range(count):
        title = latin_title(rng) if rng.random() < latin_share else chinese_title(rng)
        if rng.random() < 0.06:
            title += TITLE_SUFFIXES[int(rng.integers(0, len(TITLE_SUFFIXES)))]
        titles.append(title)
    return titles


def singer_names(rng: np.random.Generator, count: int, latin_share: float = 0.1) -> list[str]:
    """Return ``count`` distinct singer names: people, bands and a few Latin names."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        draw = rng.random()
        if draw < latin_share:
            name = latin_person(rng)
        elif draw < latin_share + 0.08:
            name = _pick(rng, TITLE_CHARACTERS, int(rng.integers(2, 4)))
            name += BAND_WORDS[int(rng.integers(0, len(BAND_WORDS)))]
        else:
            name = chinese_person(rng)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def has_invalid_gbk_bytes(text: str) -> bool:
    """Return True when the GBK encoding of ``text`` is not valid UTF-8."""
    try:
        encoded = text.encode("gbk")
    except UnicodeEncodeError:
        return False
    try:
        encoded.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def as_gbk_text(text: str) -> str:
    """Return ``text`` GBK-encoded, as a str that the writer turns back into those bytes.

    The bytes are carried as lone surrogates (the ``surrogateescape`` error
    handler), so a member written with ``encode("utf-8", "surrogateescape")``
    contains the GBK bytes unchanged.
    """
    return text.encode("gbk").decode("utf-8", "surrogateescape")
