"""The dock, its table model, map tools and background tasks."""
