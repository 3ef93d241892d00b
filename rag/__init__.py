"""Offline question answering over news articles, with cited passages.

Importing this package is cheap: models and indexes load only when asked for.
"""

__version__ = "0.1.0"
