"""`discbias score --engine ray` without the Ray extra is a usage error that says what to install (runs without Ray)."""

from discbias.cli import main
from discbias.scoring import ray_engine
from discbias.scoring.testing import make_images, save_random_discriminator


def test_engine_ray_without_the_extra_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    w = save_random_discriminator(tmp_path / "D.pt", resolution=16)
    make_images(tmp_path / "img", 2, size=(20, 20))
    monkeypatch.setattr(ray_engine, "ray_available", lambda: False)
    rc = main(["score", str(tmp_path / "img"), "--weights", str(w), "--engine", "ray", "--min-side", "8",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert rc == 2
    assert "pip install 'discbias[ray]'" in capsys.readouterr().err
    from discbias.scoring import ScoreCache

    assert ScoreCache(tmp_path / "cache").count() == 0  # nothing was scored


def test_engine_local_is_the_default(tmp_path, capsys):
    w = save_random_discriminator(tmp_path / "D.pt", resolution=16)
    make_images(tmp_path / "img", 2, size=(20, 20))
    rc = main(["score", str(tmp_path / "img"), "--weights", str(w), "--min-side", "8", "--workers", "0",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--json"])
    assert rc == 0
    assert '"scored": 2' in capsys.readouterr().out
