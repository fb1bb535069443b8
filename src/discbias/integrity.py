"""Keyed MACs (HMAC-SHA256) for what the package stores and reads back: cache entries, compiled templates.

A sha256 stored next to the data it covers detects accidents (a flipped bit, a truncated write),
not tampering: whoever rewrites the data rewrites the hash too. Every cache the package reads back
without recomputing (the fit cache, the score cache's rows, the compiled-template cache) is
therefore also covered by an HMAC-SHA256 under a secret key that lives **outside** any cache or
build folder:

* ``$DISCBIAS_KEY_FILE`` if set, else ``$XDG_CACHE_HOME/discbias/integrity.key``, else
  ``~/.cache/discbias/integrity.key``;
* 32 random bytes, created once (mode 0600, created exclusively, so concurrent first runs agree);
* a build or cache folder copied from another machine (or rewritten by someone else) carries
  entries MACed under another key: they are reported as damaged and recomputed, never served.

Deleting the key file invalidates every cache entry (they are recomputed on the next run); it is
never stored in a bundle. When the key file cannot be created (a read-only home), a key for this
process only is used and a warning says that cached entries will not be reused by later runs.

Examples
--------
>>> tag = mac(b"hello", purpose="demo")
>>> verify(b"hello", tag, purpose="demo"), verify(b"hellO", tag, purpose="demo"), verify(b"hello", tag, purpose="x")
(True, False, False)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from pathlib import Path

__all__ = ["key_file", "mac", "verify", "KEY_ENV"]

log = logging.getLogger(__name__)

KEY_ENV = "DISCBIAS_KEY_FILE"
_lock = threading.Lock()
_keys: dict[str, bytes] = {}


def key_file() -> Path:
    """Where the MAC key lives (see the module notes)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "discbias" / "integrity.key"


def _key() -> bytes:
    path = key_file()
    k = str(path)
    with _lock:
        if k in _keys:
            return _keys[k]
        key = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(os.urandom(32))
                    f.flush()
                    os.fsync(f.fileno())
            data = path.read_bytes()
            if len(data) >= 32:
                key = data
            else:  # a racing first run is still writing it, or the file was truncated
                log.warning("the integrity key %s is %d bytes (32 or more expected); using a key for this "
                            "process only (delete the file to make a new one)", path, len(data))
        except OSError as exc:
            log.warning("cannot create or read the integrity key %s (%s); using a key for this process only: "
                        "cached fits and scores written now will not be reused by later runs", path,
                        exc.strerror or exc)
        if key is None:
            key = os.urandom(32)
        _keys[k] = key
        return key


def mac(data: bytes, *, purpose: str) -> str:
    """HMAC-SHA256 of ``data`` (hex) under the key, separated by ``purpose`` (e.g. ``"fitcache"``)."""
    return hmac.new(_key(), purpose.encode() + b"\0" + bytes(data), hashlib.sha256).hexdigest()


def verify(data: bytes, tag, *, purpose: str) -> bool:
    """Whether ``tag`` is :func:`mac` of ``data`` for ``purpose`` (constant-time comparison)."""
    if not isinstance(tag, str) or len(tag) != 64:
        return False
    return hmac.compare_digest(mac(data, purpose=purpose), tag)
