"""The HTTP API and web page over the `rag` library (FastAPI).

Importing this package is cheap: the models and the index load in the app's lifespan.
"""
