"""The developer tools run as ``python -m capsight.<module>`` (feature caching, cached
evaluation, export, ensemble SCST, end-to-end training, Conceptual Captions fetching, endings,
WordNet export): their argument parsing and printing, apart from the library modules they run."""
