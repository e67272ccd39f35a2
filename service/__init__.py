"""The bundled products backend (placeholder)."""
