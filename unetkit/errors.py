"""User-facing input errors: raised at the boundary, printed by the CLI without a traceback."""


class InputError(ValueError):
    """Bad user input (file, folder, shape, dtype, option). The message names the file and the fix."""
