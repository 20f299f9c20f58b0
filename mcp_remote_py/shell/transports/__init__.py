"""The two HTTP transports (Streamable HTTP, legacy HTTP+SSE) and the choice between them."""
