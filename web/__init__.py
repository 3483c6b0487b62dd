"""Composition root: settings, the aiohttp application, HTTP routes and the browser pages."""

__version__ = "0.1.0"
