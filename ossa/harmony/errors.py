"""The one exception type of ossa.harmony."""


class HarmonyError(RuntimeError):
    """A harmony render, parse, encode or decode failure; the text matches openai-harmony's."""
