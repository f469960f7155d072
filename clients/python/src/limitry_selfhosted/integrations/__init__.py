"""Drop-in wrappers for LLM clients: check before each call, record the provider's reported usage
after it. ``openai`` and ``anthropic`` wrap the official clients; ``langchain`` is a callback
handler for any LangChain chat model."""
