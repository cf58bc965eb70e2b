"""The release: ordered steps from records to a published bundle, and the bundle read back.

:mod:`~ptsynth.release.pipeline` (the steps), :mod:`~ptsynth.release.bundle` (public and
private files, atomic write, :class:`Bundle` reader), :mod:`~ptsynth.release.manifest` and
:mod:`~ptsynth.release.protect` (k-anonymity on what is released).

``ptsynth.release(data, config, out, ...)`` is the library's front door, so this package is
callable: calling it runs :func:`ptsynth.release.pipeline.release` (a package attribute of the
same name would otherwise shadow that function as soon as the package is imported).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ptsynth.release.bundle import PRIVATE_FILES, PUBLIC_FILES, Bundle
from ptsynth.release.pipeline import Release, plan, release

__all__ = ["PRIVATE_FILES", "PUBLIC_FILES", "Bundle", "Release", "plan", "release"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Release:
        return release(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
