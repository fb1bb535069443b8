"""Class conditioning of an audit's network: read from the weights, checked against ``[scoring]``.

A class-conditional network (``c_dim > 0``) needs one of ``label_column``, ``class`` or
``average_classes`` in ``[scoring]``; an unconditional one (``c_dim = 0``) none. ``discbias audit
init`` reads ``c_dim`` from the weights (:func:`weights_c_dim`) to write the right option, and an
audit whose options do not fit the network fails with :func:`conditioning_problem`'s message,
which names the option as it is spelled in the file.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["weights_c_dim", "conditioning_problem", "set_option"]


def weights_c_dim(weights: str, base: str | Path | None = None) -> tuple[int | None, str]:
    """The network's number of classes (``c_dim``), read from the weights with the safe reader.

    Parameters
    ----------
    weights : str
        A file (``.pkl`` NVIDIA pickle, ``.pt``/``.safetensors``), relative to ``base``, or a
        registry name.
    base : path, optional
        Folder a relative ``weights`` path is resolved against (the configuration's folder).

    Returns
    -------
    (int or None, str)
        ``c_dim`` (``None`` when the weights cannot be read) and where it came from or why not.

    Examples
    --------
    >>> weights_c_dim("stylegan3-r-ffhq-1024x1024.pkl")
    (0, 'the registry entry stylegan3-r-ffhq-1024x1024.pkl')
    >>> weights_c_dim("/nonexistent/D.pkl")[0] is None
    True
    """
    from ..errors import UserError
    from ..nets.registry import KNOWN_WEIGHTS

    p = Path(weights).expanduser()
    if not p.is_absolute() and base is not None:
        p = Path(os.path.normpath(Path(base) / p))  # the configuration's folder may not exist yet
    if p.is_file():
        from ..nets import load_discriminator

        try:
            D = load_discriminator(p)
        except (UserError, ValueError, OSError) as exc:
            return None, f"{p} could not be read ({exc})"
        return int(getattr(D, "c_dim", 0) or 0), f"read from {p.name}"
    if str(weights) in KNOWN_WEIGHTS:
        return int(KNOWN_WEIGHTS[str(weights)].d_kwargs.get("c_dim", 0) or 0), f"the registry entry {weights}"
    return None, f"{p} does not exist yet"


def set_option(scoring) -> tuple[str, str] | None:
    """The conditioning option set in ``[scoring]``: ``(key, "key = value" as written in TOML)``, or None.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> set_option(NS(label_column="cls", class_=None, average_classes=False))
    ('label_column', 'label_column = "cls"')
    >>> set_option(NS(label_column=None, class_=2, average_classes=False))
    ('class', 'class = 2')
    """
    if scoring.label_column is not None:
        return "label_column", f'label_column = "{scoring.label_column}"'
    if scoring.class_ is not None:
        return "class", f"class = {scoring.class_}"
    if scoring.average_classes:
        return "average_classes", "average_classes = true"
    return None


def conditioning_problem(scoring, c_dim: int) -> tuple[str, str] | None:
    """What is wrong with ``[scoring]``'s conditioning for a network with ``c_dim`` classes: ``(key, message)``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> s = NS(label_column="cls", class_=None, average_classes=False, weights="D.pkl")
    >>> conditioning_problem(s, 0)[1]
    'label_column = "cls" is set, but the network D.pkl is unconditional (c_dim = 0): delete label_column from [scoring]'
    >>> conditioning_problem(s, 3) is None
    True
    >>> conditioning_problem(NS(label_column=None, class_=None, average_classes=False, weights="D.pkl"), 3)[0]
    'label_column'
    """
    opt = set_option(scoring)
    if c_dim == 0 and opt is not None:
        return opt[0], (f"{opt[1]} is set, but the network {scoring.weights} is unconditional (c_dim = 0): delete "
                        f"{opt[0]} from [scoring]")
    if c_dim > 0 and opt is None:
        return "label_column", (f"the network {scoring.weights} is class-conditional (c_dim = {c_dim}): add one of "
                                f"label_column = \"COLUMN\" (each image's class from a manifest column), class = K "
                                f"(K = 0..{c_dim - 1}) or average_classes = true to [scoring]")
    if c_dim > 0 and scoring.class_ is not None and not 0 <= scoring.class_ < c_dim:
        return "class", (f"class = {scoring.class_} is out of range: the network {scoring.weights} has {c_dim} "
                         f"classes (0..{c_dim - 1})")
    return None
