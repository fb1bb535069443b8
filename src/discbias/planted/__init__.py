"""Planted-bias validation: discriminators trained here on synthetic faces with known, planted
preferences, audited with the ordinary audit, to measure the audit's power and false-positive rate.

Modules: :mod:`~discbias.planted.data` (the procedural faces), :mod:`~discbias.planted.train`
(non-saturating logistic loss + R1 on the package's own discriminator),
:mod:`~discbias.planted.checkpoint` (NVIDIA's pickle layout), :mod:`~discbias.planted.study`
(the study kind run by ``discbias report --config analysis/planted.toml``).
"""
