"""One router per resource: captions, videos, jobs, models, health, and the legacy endpoints."""
