"""The trio shell: the waiting, the sockets and the timers that carry out the core's decisions.

``relay`` answers every client request, ``stdio`` reads and writes the client's pipes,
``transports`` speak Streamable HTTP and legacy SSE, ``net`` builds the one HTTP client (over
``http1``), ``logs`` sets up logging, ``memory`` gives freed heap back, ``parent`` watches the
launcher. It imports the core, never the features or the command line above it.
"""
