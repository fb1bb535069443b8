"""``make probes-demo``: the whole probe pipeline on a seeded, randomly initialised discriminator.

Renders ``build/probes-demo/report/probes-demo.{qmd,html,pdf}``, watermarked on every page and
figure as a mechanics demonstration with untrained weights, never a finding. Inputs are made
here: the discriminator (seeded random initialisation, saved as safetensors), base images
(scikit-image's public-domain ``astronaut``, cropped to the FFHQ alignment, and synthetic faces
drawn on the FFHQ template) and a synthetic reference set for the training-distribution
comparison. Run ``python -m discbias.probes.demo`` (or ``discbias probes-demo``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..measures.color import linear_to_srgb, srgb_to_linear
from ..measures.faces import FFHQ_TEMPLATE, MONK_HEX, _ellipse, template_regions
from ..paths import ProjectPaths

DEFAULT_CONFIG = "analysis/probes-demo.toml"
#: The astronaut's face in scikit-image's 512 x 512 image, cropped so that the eyes and mouth fall
#: on the FFHQ template (eye distance = a quarter of the crop).
ASTRONAUT_CROP = (140, 22, 308, 190)


@dataclass(frozen=True)
class DemoPaths(ProjectPaths):
    """Project paths whose build folder is ``build/probes-demo`` (separate from the paper's)."""

    @property
    def build(self) -> Path:
        return self.root / "build" / "probes-demo"

    @property
    def inputs(self) -> Path:
        return self.build / "inputs"


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
    img[_ellipse(size, size, *t["head"])] = hair
    (cx, cy), (ax, ay) = t["face_oval"]
    face = _ellipse(size, size, (cx, cy + 0.01), (ax * 1.08, ay * 1.05))
    tex = 1.0 + _smooth_noise(rng, size, 16, 0.04)[..., None]
    img[face] = (skin * tex)[face]
    for eye in (t["left_eye"], t["right_eye"]):
        img[_ellipse(size, size, eye, (0.05, 0.022))] = (0.92, 0.92, 0.9)
        img[_ellipse(size, size, eye, (0.018, 0.018))] = (0.2, 0.13, 0.08)
        img[_ellipse(size, size, (eye[0], eye[1] - t["brow_offset"]), (0.06, 0.012))] = hair
    img[_ellipse(size, size, t["mouth"], (0.07, 0.018))] = skin * np.array([0.8, 0.45, 0.45])
    img[_ellipse(size, size, (0.5, 0.85), (0.3, 0.2)) & (yy[..., 0] > 0.82)] = (0.25, 0.3, 0.45)  # shoulders
    img = img + _smooth_noise(rng, size, 4, 0.01)[..., None]
    img = linear_to_srgb(np.clip(srgb_to_linear(np.clip(img, 0, 1)) * 2.0 ** exposure, 0, 1))
    return np.round(img * 255).astype(np.uint8)


def astronaut(size: int) -> np.ndarray:
    """scikit-image's public-domain astronaut (NASA), cropped to the FFHQ alignment."""
    from PIL import Image
    from skimage import data

    x0, y0, x1, y1 = ASTRONAUT_CROP
    return np.asarray(Image.fromarray(data.astronaut()[y0:y1, x0:x1]).resize((size, size), Image.LANCZOS))


def prepare_inputs(config, paths: DemoPaths) -> dict:
    """Make the random discriminator, the base images and the reference set (idempotent)."""
    import torch
    from PIL import Image

    from ..nets import Discriminator, discriminator_flops, save_discriminator

    p = config.raw.get("probes", {})
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
    Image.fromarray(astronaut(res)).save(bases / "astronaut.png")
    tones = inp.get("synthetic_tones", [2, 8])
    for k in tones:
        Image.fromarray(synthetic_face(res, MONK_HEX[k - 1], rng)).save(bases / f"synthetic-monk{k:02d}.png")
    ref = paths.root / p["reference"]
    ref.mkdir(parents=True, exist_ok=True)
    n_ref = int(inp.get("n_reference", 40))
    for i in range(n_ref):
        tone = MONK_HEX[int(rng.integers(0, 10))]
        bg = tuple(rng.uniform(0.2, 0.9, 3))
        Image.fromarray(synthetic_face(64, tone, rng, bg=bg, exposure=float(rng.normal(0, 0.6)))).save(ref / f"ref{i:03d}.png")
    return dict(weights=str(wpath), flops=flops, params=int(sum(t.numel() for t in D.parameters())), resolution=res,
                seed=seed, n_bases=1 + len(tones), n_reference=n_ref, network_kwargs=kwargs)


def run_demo(config_path: str | Path = DEFAULT_CONFIG, root: str | Path | None = None,
             formats=("html", "pdf")) -> list[Path]:
    """Run measure -> fit -> figures -> render for the probes alone, into ``build/probes-demo``."""
    from ..analyses import probes as analysis
    from ..config import load_config
    from ..paths import project_paths
    from ..pipeline import FigureContext, FitContext, MeasureContext, software_versions
    from ..report.render import render_html, render_pdf, render_qmd
    from ..results import write_table, write_values

    config = load_config(config_path)
    paths = DemoPaths(project_paths(root).root)
    paths.ensure()
    t0 = time.perf_counter()
    info = prepare_inputs(config, paths)
    t_inputs = time.perf_counter() - t0
    made, _ = analysis.measure(MeasureContext(config, paths))
    for name, df in made.items():
        write_table(df, paths.measures / f"{name}.parquet")
    t_measure = time.perf_counter() - t0 - t_inputs
    from ..pipeline import load_measures, load_results

    fctx = FitContext(config, paths, load_measures(paths))
    analysis.fit(fctx)
    fctx.results["models"] = pd.DataFrame(fctx.models)
    for name, df in fctx.results.items():
        write_table(df, paths.results / f"{name}.csv")
    t_fit = time.perf_counter() - t0 - t_inputs - t_measure
    fctx.values["meta"] = dict(title=config.title, study_id=config.id, software=software_versions(),
                               build_date=time.strftime("%Y-%m-%d"),
                               demo_network=dict(info, network_kwargs=json.dumps(info["network_kwargs"])),
                               seconds=dict(inputs=t_inputs, measure=t_measure, fit=t_fit))
    write_values(fctx.values, paths.values)
    import matplotlib

    matplotlib.use("Agg")
    values = json.loads(paths.values.read_text())
    from ..report.figures import probes as probe_figures

    probe_figures.figures(FigureContext(config, paths, load_measures(paths), load_results(paths), values))
    template_dir = paths.root / "report"
    qmd = render_qmd(paths, template_dir, "probes-demo.qmd.j2")
    qmd = qmd.rename(qmd.with_name("probes-demo.qmd"))
    outs = [qmd]
    if "html" in formats:
        outs.append(render_html(qmd))
    if "pdf" in formats:
        outs.append(render_pdf(qmd, paths.build))
    print(f"[discbias] probes demo: inputs {t_inputs:.0f}s, probes {t_measure:.0f}s, models {t_fit:.0f}s, "
          f"total {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    for o in outs:
        print(f"[discbias] wrote {o}", file=sys.stderr)
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
