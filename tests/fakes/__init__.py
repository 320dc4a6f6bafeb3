"""In-memory fakes of the ports the services' use cases depend on (unit tests need no
servers); the real-server tests prove the adapters behave the same way."""
