"""Generated footage shared by the Memento front-half tests (rendered once per session)."""

from __future__ import annotations

import pytest

from pipelines.demo_memento import Film, Shot, hard_cases_film, memento_film, render_film


@pytest.fixture(scope="session")
def hard_film(tmp_path_factory):
    """~33 s at 320x180 with jump cuts, fades, dissolves, flashes, black and static stretches, subtitles, logo."""
    path = tmp_path_factory.mktemp("footage") / "hard.mp4"
    return path, render_film(path, hard_cases_film())


@pytest.fixture(scope="session")
def small_film(tmp_path_factory):
    """The paper-shaped footage at a quarter of every duration (sequences of 7.5-15 s, shots > 1.25 s)."""
    path = tmp_path_factory.mktemp("footage") / "small.mp4"
    return path, render_film(path, memento_film(320, 180, 24.0, scale=0.25))


@pytest.fixture(scope="session")
def letterboxed_film(tmp_path_factory):
    path = tmp_path_factory.mktemp("footage") / "letterbox.mp4"
    film = Film((Shot(48), Shot(48), Shot(48, "jump")), 320, 240, 24.0, letterbox=30, seed=4, subtitle_every=1.0)
    return path, render_film(path, film)
