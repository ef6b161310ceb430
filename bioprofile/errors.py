"""The one error type for bad user input: the CLI prints its message on one line and exits with code 2."""


class BioprofileInputError(ValueError):
    """Input a user can fix (unknown genes, a missing file, a path that is not a model...).

    The message is one line naming the problem and what to do about it.
    """
