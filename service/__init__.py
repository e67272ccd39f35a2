"""The bundled products backend: the seed's Express service rebuilt on Starlette so that Redis
cannot take it down. `python -m service` runs it; `service.app.create_app()` builds the app.
"""
