"""The local platform: the real handlers behind an HTTP server, with moto playing AWS."""
