"""The public showcase page of a bundle: one offline HTML file to explore a release.

Built only from the bundle's public files (:mod:`ptsynth.showcase.build`); the breakdown pages
follow the optional ``[showcase]`` config section or what the columns suggest
(:mod:`ptsynth.showcase.layout`). ``ptsynth showcase BUNDLE -o showcase.html`` writes it; every
release writes it into the bundle as ``showcase.html``.
"""

from ptsynth.showcase.build import render, write_showcase
from ptsynth.showcase.layout import Layout, layout

__all__ = ["Layout", "layout", "render", "write_showcase"]
