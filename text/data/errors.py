"""The one error type of the data layer.

Every bad-input case (missing or truncated file, checksum mismatch, invalid UTF-8, empty split,
vocabulary from another dataset) raises `DataError` with a message that names the file and says
what to do, so callers can print it as is instead of a traceback from deep inside numpy.
"""


class DataError(ValueError):
    """A dataset file or cache is missing, damaged or inconsistent."""
