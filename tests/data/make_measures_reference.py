"""Write tests/data/measures_reference.csv: `measure-images --faces template` outputs of the
per-image implementation (before the vectorised rewrite, commit f2aa1c5) on generated images.

test_measures_speedup.py checks that the current implementation reproduces these values. Rerun
(`python tests/data/make_measures_reference.py`) only when a measure's definition changes on purpose.
"""

import tempfile
from pathlib import Path

from PIL import Image

from discbias.measures import measure_images
from discbias.measures.testing import sample_photographs

OUT = Path(__file__).with_name("measures_reference.csv")
SIZES = (97, 128)


def write_images(folder: Path) -> None:
    for size in SIZES:
        for name, img in sample_photographs(size).items():
            Image.fromarray(img).save(folder / f"{name}_{size}.png")


def main():
    with tempfile.TemporaryDirectory() as d:
        write_images(Path(d))
        df, failures = measure_images(d, workers=1, faces="template", progress=False)
    assert len(failures) == 0, failures
    df.drop(columns=["path", "image_sha256"]).to_csv(OUT, index=False, float_format="%.17g")
    print(f"{len(df)} rows -> {OUT}")


if __name__ == "__main__":
    main()
