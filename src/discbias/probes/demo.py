"""``make probes-demo``: the whole probe pipeline on a seeded, randomly initialised discriminator.

Renders ``build/probes-demo/report/probes-demo.{qmd,html,pdf}``, watermarked on every page and
figure as a mechanics demonstration with untrained weights, never a finding. Inputs are made
here: the discriminator (seeded random initialisation, saved as safetensors), base images
(scikit-image's public-domain ``astronaut``, cropped to the FFHQ alignment, and synthetic faces
drawn on the FFHQ template) and a synthetic reference set for the training-distribution
comparison. Run ``python -m discbias.probes.demo`` (or ``discbias probes-demo``).
"""

from __future__ import annotations

import logging
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..measures.color import linear_to_srgb, srgb_to_linear
from ..measures.faces import FFHQ_TEMPLATE, MONK_HEX, ellipse_mask, template_regions
from ..paths import ProjectPaths
from ..stages import CONFIG_INPUT, OPTIONS_INPUT, RAW_INPUT, files_stamp

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "analysis/probes-demo.toml"
#: The astronaut's face in scikit-image's 512 x 512 image, cropped so that the eyes and mouth fall
#: on the FFHQ template (eye distance = a quarter of the crop).
ASTRONAUT_CROP = (140, 22, 308, 190)


#: The demo's build folder under ``build/`` (:class:`~discbias.paths.ProjectPaths` ``study``).
STUDY = "probes-demo"


def demo_paths(root: str | Path | None = None) -> ProjectPaths:
    """The demo's paths: the project's, with the build in ``build/probes-demo`` (inputs in its ``inputs/``)."""
    from ..paths import project_paths

    return project_paths(root, STUDY)


def _smooth_noise(rng, size, scale=16, amp=1.0):
    from PIL import Image

    small = rng.normal(0, 1, (size // scale, size // scale)).astype(np.float32)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC)) * amp


def synthetic_face(size: int, skin_hex: str, rng, bg=(0.45, 0.55, 0.7), hair=(0.18, 0.12, 0.08), exposure=0.0):
    """A face drawn on the FFHQ template: background, hair, skin with texture, eyes, brows, lips."""
    skin = np.array([int(skin_hex[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    img = np.empty((size, size, 3))
    yy = np.linspace(0, 1, size)[:, None, None]
    img[:] = np.asarray(bg) * (0.8 + 0.4 * yy)
    t = FFHQ_TEMPLATE
    img[ellipse_mask(size, size, *t["head"])] = hair
    (cx, cy), (ax, ay) = t["face_oval"]
    face = ellipse_mask(size, size, (cx, cy + 0.01), (ax * 1.08, ay * 1.05))
    tex = 1.0 + _smooth_noise(rng, size, 16, 0.04)[..., None]
    img[face] = (skin * tex)[face]
    for eye in (t["left_eye"], t["right_eye"]):
        img[ellipse_mask(size, size, eye, (0.05, 0.022))] = (0.92, 0.92, 0.9)
        img[ellipse_mask(size, size, eye, (0.018, 0.018))] = (0.2, 0.13, 0.08)
        img[ellipse_mask(size, size, (eye[0], eye[1] - t["brow_offset"]), (0.06, 0.012))] = hair
    img[ellipse_mask(size, size, t["mouth"], (0.07, 0.018))] = skin * np.array([0.8, 0.45, 0.45])
    img[ellipse_mask(size, size, (0.5, 0.85), (0.3, 0.2)) & (yy[..., 0] > 0.82)] = (0.25, 0.3, 0.45)  # shoulders
    img = img + _smooth_noise(rng, size, 4, 0.01)[..., None]
    img = linear_to_srgb(np.clip(srgb_to_linear(np.clip(img, 0, 1)) * 2.0 ** exposure, 0, 1))
    return np.round(img * 255).astype(np.uint8)


def astronaut(size: int) -> np.ndarray:
    """scikit-image's public-domain astronaut (NASA), cropped to the FFHQ alignment."""
    from PIL import Image
    from skimage import data

    x0, y0, x1, y1 = ASTRONAUT_CROP
    return np.asarray(Image.fromarray(data.astronaut()[y0:y1, x0:x1]).resize((size, size), Image.LANCZOS))


def prepare_inputs(config, paths: ProjectPaths) -> dict:
    """Make the random discriminator, the base images and the reference set (idempotent)."""
    import torch
    from PIL import Image

    from ..nets import Discriminator, discriminator_flops, save_discriminator

    from ..analyses.probes import probes_table

    p = probes_table(config)
    net = dict(p.get("demo_network", {}))
    seed = int(net.pop("seed", 0))
    res = int(net.pop("resolution", 256))
    inp = dict(p.get("demo_inputs", {}))
    wpath = paths.root / p["weights"]
    wpath.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    kwargs = dict(c_dim=0, img_resolution=res, img_channels=3, architecture="resnet", num_fp16_res=0, conv_clamp=256)
    kwargs.update(net)
    D = Discriminator(**kwargs)
    if not wpath.exists():
        save_discriminator(D, wpath)
    flops = discriminator_flops(D)["total"]
    bases = paths.root / p["images"]
    bases.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(inp.get("seed", 0)))
    _save_png(astronaut(res), bases / "astronaut.png")
    tones = inp.get("synthetic_tones", [2, 8])
    for k in tones:
        _save_png(synthetic_face(res, MONK_HEX[k - 1], rng), bases / f"synthetic-monk{k:02d}.png")
    ref = paths.root / p["reference"]
    ref.mkdir(parents=True, exist_ok=True)
    n_ref = int(inp.get("n_reference", 40))
    for i in range(n_ref):
        tone = MONK_HEX[int(rng.integers(0, 10))]
        bg = tuple(rng.uniform(0.2, 0.9, 3))
        _save_png(synthetic_face(64, tone, rng, bg=bg, exposure=float(rng.normal(0, 0.6))), ref / f"ref{i:03d}.png")
    return dict(weights=str(wpath), flops=flops, params=int(sum(t.numel() for t in D.parameters())), resolution=res,
                seed=seed, n_bases=1 + len(tones), n_reference=n_ref, network_kwargs=kwargs)


def _save_png(pixels: np.ndarray, path: Path) -> None:
    """Write a PNG only when its bytes differ from the file's (so an unchanged input keeps its time
    stamp and the engine does not rescore it)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    data = buf.getvalue()
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def _values_step(config, fit_steps):
    """values.json of the demo: the probes section, the demo network's description, and models.csv."""
    def run(ctx) -> None:
        from ..analyses import probes as analysis
        from ..pipeline import software_versions

        info = ctx.read_value("demo/inputs")
        fitinfo = ctx.read_value("fitinfo/probes")
        measured = json.loads((ctx.paths.manifests / "probes:score.json").read_text())  # the engine's record
        values = {analysis.SECTION: ctx.read_value(f"values/{analysis.SECTION}")}
        values["meta"] = dict(title=ctx.config.title, study_id=ctx.config.id, software=software_versions(),
                              build_date=time.strftime("%Y-%m-%d"),
                              demo_network=dict(info, network_kwargs=json.dumps(info["network_kwargs"])),
                              seconds=dict(inputs=ctx.read_value("demo/timing")["seconds"],
                                           measure=measured.get("seconds"), fit=fitinfo.get("seconds")))
        ctx.write("results/models", pd.DataFrame([dict(kv) for kv in fitinfo["models"]]))
        ctx.write_value("values", values)

    return run, [CONFIG_INPUT, "demo/inputs", "demo/timing"], ["results/models", "values"], None


def _render_step(ctx) -> None:
    from ..report.render import render_qmd
    from ..stages import render_document_step

    qmd = render_qmd(ctx.paths, ctx.paths.root / "report", "probes-demo.qmd.j2")
    render_document_step(ctx, qmd.rename(qmd.with_name("probes-demo.qmd")))


def _render(formats):
    def render(config, paths):
        return _render_step, [], dict(formats=list(formats), templates=files_stamp(paths.root / "report"))

    return render


def definition(formats=("html", "pdf")):
    """The demo as a study (:class:`discbias.stages.StudyDefinition`): the probes analysis (its
    measure and fit steps and its figure step), the demo's values and its render; no fetch and no
    shared data-issues, provenance or claims steps (the demo makes no claims)."""
    from ..analyses import probes as analysis
    from ..report.figures import probes as figures
    from ..stages import StudyDefinition

    return StudyDefinition(STUDY, lambda config: [analysis, figures], _values_step, _render(formats),
                           external=(CONFIG_INPUT, RAW_INPUT, OPTIONS_INPUT, "demo/inputs", "demo/timing"),
                           shared=frozenset())


def demo_engine(config, paths: ProjectPaths, formats=("html", "pdf")):
    """The probes demo's engine: :func:`discbias.stages.build_steps` of its :func:`definition`
    (the same sequence as every study; the engine decides what reruns).

    Examples
    --------
    >>> import tempfile
    >>> from discbias.config import load_config
    >>> e = demo_engine(load_config("analysis/probes-demo.toml"), demo_paths(tempfile.mkdtemp()))
    >>> e.order()
    ['probes:score', 'probes', 'fit:values', 'publish:results', 'probes:figures', 'render']
    """
    from ..stages import build_engine

    return build_engine(config, paths, definition(formats))


def run_demo(config_path: str | Path = DEFAULT_CONFIG, root: str | Path | None = None,
             formats=("html", "pdf"), force: bool = False) -> list[Path]:
    """Run the probes demo into ``build/probes-demo`` on the engine (:func:`demo_engine`): only the
    steps whose code, inputs or parameters changed rerun."""
    import matplotlib

    from ..config import load_config
    from ..pipeline import config_stamp

    matplotlib.use("Agg")
    config = load_config(config_path)
    paths = demo_paths(root).ensure()

    t0 = time.perf_counter()
    before = files_stamp(paths.build / "inputs")
    info = prepare_inputs(config, paths)
    made = files_stamp(paths.build / "inputs") != before  # inputs are rewritten only when their bytes change
    engine = demo_engine(config, paths, formats)
    if made or not engine.store.exists("demo/timing"):  # how long making the inputs took, when they were made
        engine.store.put_value("demo/timing", dict(seconds=time.perf_counter() - t0))
    for name, value in ((CONFIG_INPUT, config_stamp(config)), (RAW_INPUT, {}), (OPTIONS_INPUT, dict(on_invalid="report")),
                        ("demo/inputs", info)):
        engine.store.set_input(name, value)
    ran = engine.run(force=force, context=dict(config=config, paths=paths, on_invalid="report", formats=formats),
                     log=lambda m: log.info(f"probes demo {m}"))
    log.info("probes demo: %d step(s) ran, %d up to date, %.0fs", int((ran["status"] == "ran").sum()),
             int((ran["status"] != "ran").sum()), time.perf_counter() - t0)
    outs = [paths.report / f for f in engine.store.get_value("report/render")["files"]]
    for o in outs:
        log.info("wrote %s", o)
    return outs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m discbias.probes.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--root", default=None)
    ap.add_argument("--to", default="html,pdf")
    a = ap.parse_args(argv)
    run_demo(a.config, a.root, tuple(f for f in a.to.split(",") if f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
