from sessions_support import redis_server  # noqa: F401 - the fixture, for this folder's tests
