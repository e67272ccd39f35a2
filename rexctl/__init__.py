"""rexctl: put a Redis cache in front of an ECS backend, prove it helps, prove it fails safe."""

__version__ = "0.1.0"
