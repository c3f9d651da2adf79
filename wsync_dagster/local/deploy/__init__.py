"""The production deployment, run locally: ``python3 dev.py deploy`` (see docs/deploy.md)."""
