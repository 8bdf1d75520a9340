"""Tests for hatoba.engine.names: generated container names and name validation."""

import random

import pytest

from hatoba.engine.names import (
    ADJECTIVES,
    SURNAMES,
    generate,
    invalid_name_message,
    valid_name,
    validate_name,
)

LOWER = set("abcdefghijklmnopqrstuvwxyz")


def test_word_lists_are_large_unique_and_lowercase():
    assert len(ADJECTIVES) >= 100
    assert len(SURNAMES) >= 200
    assert len(set(ADJECTIVES)) == len(ADJECTIVES)
    assert len(set(SURNAMES)) == len(SURNAMES)
    for word in (*ADJECTIVES, *SURNAMES):
        assert word and set(word) <= LOWER, word


def test_generated_name_shape():
    name = generate(lambda _: False, rng=random.Random(1))
    adjective, _, surname = name.partition("_")
    assert adjective in ADJECTIVES
    assert surname in SURNAMES
    assert valid_name(name)


def test_generate_is_reproducible_with_rng():
    assert generate(lambda _: False, rng=random.Random(42)) == generate(
        lambda _: False, rng=random.Random(42)
    )


def test_generate_without_rng_uses_module_random():
    names = {generate(lambda _: False) for _ in range(50)}
    assert len(names) > 1
    assert all(valid_name(n) for n in names)


def test_collision_appends_a_digit():
    seen: list[str] = []

    def exists(name: str) -> bool:
        seen.append(name)
        return len(seen) == 1  # only the first candidate is taken

    name = generate(exists, rng=random.Random(7))
    assert len(seen) == 2
    assert name == seen[1]
    assert name[-1].isdigit()
    assert not name[-2].isdigit()
    assert not seen[0][-1].isdigit()


def test_many_collisions_fall_back_to_wider_suffix():
    seen: list[str] = []

    def exists(name: str) -> bool:
        seen.append(name)
        return len(seen) <= 6  # the plain attempt and all five one-digit attempts collide

    name = generate(exists, rng=random.Random(3))
    assert len(seen) == 7
    assert all(n[-1].isdigit() for n in seen[1:6])
    assert name == seen[6]
    assert valid_name(name)


def test_generate_gives_up_eventually():
    with pytest.raises(RuntimeError):
        generate(lambda _: True, rng=random.Random(0))


def test_generate_avoids_existing_names():
    taken = {f"{a}_{s}" for a in ADJECTIVES for s in SURNAMES[:100]}
    for seed in range(20):
        name = generate(taken.__contains__, rng=random.Random(seed))
        assert name not in taken


@pytest.mark.parametrize(
    "name",
    ["web", "/web", "ab", "a1", "1a", "my_app", "my.app", "my-app", "A-Z.0_9", "0123456789", "x" * 200],
)
def test_valid_names(name):
    assert valid_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",
        "/a",
        "/",
        "//web",
        "_web",
        ".web",
        "-web",
        "web app",
        "web/app",
        "wéb",
        "web\n",
        "web!",
        "web:1",
    ],
)
def test_invalid_names(name):
    assert not valid_name(name)


def test_invalid_name_message():
    assert (
        invalid_name_message("-bad")
        == "Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )


def test_validate_name():
    assert validate_name("/web") == "web"
    assert validate_name("web") == "web"
    with pytest.raises(ValueError) as exc:
        validate_name("a b")
    assert str(exc.value) == "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
