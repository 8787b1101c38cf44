"""The team pool: the engine as replicas of one Ray Serve deployment (`jpilot pool serve`).

- api.py: the OpenAI-compatible request and response shapes, pure helpers.
- replica.py: one replica: an Engine, its stats and metrics, generation off the event loop.
- app.py: the FastAPI ingress served through Serve (auth, endpoints) and `build_app`.
- router.py: session affinity on Serve's request-router API, least-loaded fallback.
- cli.py: `jpilot pool serve`.

Everything here but api.py and cli.py's argument declarations needs the `pool` extra.
"""
