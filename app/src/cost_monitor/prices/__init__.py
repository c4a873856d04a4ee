"""The price catalog shipped with the app (LiteLLM entry format)."""
