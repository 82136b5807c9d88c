"""Rate limiting: the `Limiter` protocol, the local `RateLimiter`, the shared `RedisRateLimiter`."""
