"""The CLI's exit codes, documented in ``--help``."""

EXIT_OK = 0  # success
EXIT_FAILED = 1  # the transfer (or a connection test) failed; the summary says which chunk and why
EXIT_USAGE = 2  # usage or configuration error: one line on stderr, nothing was written
EXIT_INTERRUPTED = 130  # Ctrl-C: running tools were stopped, nothing was published
